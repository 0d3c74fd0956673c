package main

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// Random templates: pipelines of ESO's functions over the data map, inside if/range/with, from a seed. Only
// deterministic functions appear (no now, rand*, uuidv4, genPrivateKey, certificates, encryptAES output). The
// generator is typed loosely: most templates run, some fail, and both outcomes are compared.

// kind of value an expression yields.
type kind int

const (
	kStr kind = iota
	kInt
	kBool
	kList
	kMap
	kAny
)

type fn struct {
	name string
	args []kind
	out  kind
}

// Functions and the kinds they take and give. Literal-only arguments are produced by special cases in expr.
var catalog = []fn{
	// strings
	{"upper", []kind{kStr}, kStr}, {"lower", []kind{kStr}, kStr}, {"title", []kind{kStr}, kStr},
	{"untitle", []kind{kStr}, kStr}, {"trim", []kind{kStr}, kStr}, {"nospace", []kind{kStr}, kStr},
	{"initials", []kind{kStr}, kStr}, {"swapcase", []kind{kStr}, kStr}, {"snakecase", []kind{kStr}, kStr},
	{"camelcase", []kind{kStr}, kStr}, {"kebabcase", []kind{kStr}, kStr}, {"quote", []kind{kAny}, kStr},
	{"squote", []kind{kAny}, kStr}, {"b64enc", []kind{kStr}, kStr}, {"b64dec", []kind{kStr}, kStr},
	{"b32enc", []kind{kStr}, kStr}, {"b32dec", []kind{kStr}, kStr}, {"hexdec", []kind{kStr}, kStr},
	{"sha1sum", []kind{kStr}, kStr}, {"sha256sum", []kind{kStr}, kStr}, {"adler32sum", []kind{kStr}, kStr},
	{"toString", []kind{kAny}, kStr}, {"base", []kind{kStr}, kStr}, {"dir", []kind{kStr}, kStr},
	{"clean", []kind{kStr}, kStr}, {"ext", []kind{kStr}, kStr}, {"urlquery", []kind{kAny}, kStr},
	{"html", []kind{kAny}, kStr}, {"js", []kind{kAny}, kStr}, {"cat", []kind{kAny, kAny}, kStr},
	{"trimPrefix", []kind{kStr, kStr}, kStr}, {"trimSuffix", []kind{kStr, kStr}, kStr},
	{"trimAll", []kind{kStr, kStr}, kStr}, {"replace", []kind{kStr, kStr, kStr}, kStr},
	{"contains", []kind{kStr, kStr}, kBool}, {"hasPrefix", []kind{kStr, kStr}, kBool},
	{"hasSuffix", []kind{kStr, kStr}, kBool}, {"repeat", []kind{kInt, kStr}, kStr},
	{"trunc", []kind{kInt, kStr}, kStr}, {"abbrev", []kind{kInt, kStr}, kStr}, {"wrap", []kind{kInt, kStr}, kStr},
	{"indent", []kind{kInt, kStr}, kStr}, {"nindent", []kind{kInt, kStr}, kStr}, {"substr", []kind{kInt, kInt, kStr}, kStr},
	{"plural", []kind{kStr, kStr, kInt}, kStr}, {"print", []kind{kAny, kAny}, kStr}, {"println", []kind{kAny}, kStr},
	{"len", []kind{kAny}, kInt}, {"atoi", []kind{kStr}, kInt}, {"int", []kind{kAny}, kInt},
	{"regexMatch", []kind{kStr, kStr}, kBool}, {"regexFind", []kind{kStr, kStr}, kStr},
	{"regexReplaceAll", []kind{kStr, kStr, kStr}, kStr}, {"regexReplaceAllLiteral", []kind{kStr, kStr, kStr}, kStr},
	{"regexQuoteMeta", []kind{kStr}, kStr},
	// numbers
	{"add", []kind{kAny, kAny}, kInt}, {"sub", []kind{kAny, kAny}, kInt}, {"mul", []kind{kAny, kAny}, kInt},
	{"max", []kind{kAny, kAny}, kInt}, {"min", []kind{kAny, kAny}, kInt}, {"add1", []kind{kAny}, kInt},
	{"int64", []kind{kAny}, kInt}, {"float64", []kind{kAny}, kAny}, {"addf", []kind{kAny, kAny}, kAny},
	{"mulf", []kind{kAny, kAny}, kAny}, {"ceil", []kind{kAny}, kAny}, {"floor", []kind{kAny}, kAny},
	{"toDecimal", []kind{kAny}, kInt},
	// lists
	{"list", []kind{kAny, kAny, kAny}, kList}, {"first", []kind{kList}, kAny}, {"last", []kind{kList}, kAny},
	{"rest", []kind{kList}, kList}, {"initial", []kind{kList}, kList}, {"reverse", []kind{kList}, kList},
	{"uniq", []kind{kList}, kList}, {"compact", []kind{kList}, kList}, {"sortAlpha", []kind{kList}, kList},
	{"join", []kind{kStr, kList}, kStr}, {"has", []kind{kAny, kList}, kBool}, {"without", []kind{kList, kAny}, kList},
	{"concat", []kind{kList, kList}, kList}, {"append", []kind{kList, kAny}, kList}, {"prepend", []kind{kList, kAny}, kList},
	{"splitList", []kind{kStr, kStr}, kList}, {"toStrings", []kind{kAny}, kList}, {"until", []kind{kInt}, kList},
	// maps
	{"dict", []kind{kStr, kAny, kStr, kAny}, kMap}, {"keys", []kind{kMap}, kList}, {"values", []kind{kMap}, kList},
	{"hasKey", []kind{kMap, kStr}, kBool}, {"get", []kind{kMap, kStr}, kAny}, {"pick", []kind{kMap, kStr}, kMap},
	{"omit", []kind{kMap, kStr}, kMap}, {"merge", []kind{kMap, kMap}, kMap}, {"deepCopy", []kind{kAny}, kAny},
	{"fromJson", []kind{kStr}, kAny}, {"toJson", []kind{kAny}, kStr}, {"toPrettyJson", []kind{kAny}, kStr},
	{"toRawJson", []kind{kAny}, kStr}, {"fromYaml", []kind{kStr}, kMap}, {"toYaml", []kind{kAny}, kStr},
	{"split", []kind{kStr, kStr}, kMap},
	// defaults, reflection
	{"default", []kind{kAny, kAny}, kAny}, {"empty", []kind{kAny}, kBool}, {"coalesce", []kind{kAny, kAny}, kAny},
	{"ternary", []kind{kAny, kAny, kBool}, kAny}, {"typeOf", []kind{kAny}, kStr}, {"kindOf", []kind{kAny}, kStr},
	{"not", []kind{kAny}, kBool}, {"and", []kind{kAny, kAny}, kAny}, {"or", []kind{kAny, kAny}, kAny},
	{"eq", []kind{kStr, kStr}, kBool}, {"ne", []kind{kInt, kInt}, kBool}, {"lt", []kind{kInt, kInt}, kBool},
	{"deepEqual", []kind{kAny, kAny}, kBool},
}

type gen struct {
	r     *rand.Rand
	keys  []string // data keys
	depth int
}

func (g *gen) pick(items ...string) string { return items[g.r.IntN(len(items))] }

var strLits = []string{`"hello"`, `"a,b,c"`, `""`, `"Ünïcödé ß"`, `"  spaced  "`, `"1.2.3"`, `"y"`, `"yes"`, `","`,
	`"x"`, `"HTTP_Server-name"`, `"/a/b/c.txt"`, `"a.b"`, `"%"`, `"\n"`, "`raw\\n`", `"0x1F"`, `"on"`, `"~"`,
	`"12"`, `"3.5"`, `"true"`, `"-"`, `"[a-z]+"`, `"(\\d+)"`, `"$1-$1"`, `"${1}x"`}

func (g *gen) field() string {
	k := g.keys[g.r.IntN(len(g.keys))]
	if strings.ContainsAny(k, "-.") || g.r.IntN(4) == 0 {
		return fmt.Sprintf(`(index . %q)`, k)
	}
	return "." + k
}

func (g *gen) leaf(k kind) string {
	switch k {
	case kStr:
		if g.r.IntN(2) == 0 {
			return g.field()
		}
		return strLits[g.r.IntN(len(strLits))]
	case kInt:
		return fmt.Sprint(g.r.IntN(12) - 2)
	case kBool:
		return g.pick("true", "false")
	case kList:
		return g.pick(`(list 1 "b" 2.5)`, `(list "b" "a" "b")`, `(splitList "," .list)`, `(list)`,
			`(list (list 1 2) (dict "k" "v"))`, `(until 4)`)
	case kMap:
		return g.pick(`(dict "a" 1 "b" "two")`, `(fromJson .json)`, `(fromYaml .yaml)`, `(dict)`,
			`(fromYaml .yaml11)`, `(dict "n" (dict "m" (list 1 2)))`)
	default:
		return g.leaf(kind(g.r.IntN(5)))
	}
}

func (g *gen) expr(k kind) string {
	if g.depth > 3 || g.r.IntN(3) == 0 {
		return g.leaf(k)
	}
	g.depth++
	defer func() { g.depth-- }()
	// Special forms with literal arguments.
	switch g.r.IntN(14) {
	case 0:
		if k == kStr || k == kAny {
			return fmt.Sprintf(`(printf %q %s %s)`, g.pick("%v-%v", "%s|%q", "%d %x", "%5.2f%%%T", "%-6v|%06d", "%v"),
				g.expr(kAny), g.expr(kAny))
		}
	case 1:
		if k == kStr || k == kAny {
			return fmt.Sprintf(`(dateInZone %q %d %q)`, g.pick("2006-01-02 15:04:05 MST", "Mon Jan _2 3:04PM -0700",
				"2006-01-02T15:04:05Z07:00", "Jan 2 2006", "15:04 MST"), 946684800+g.r.IntN(800000000),
				g.pick("UTC", "Asia/Tokyo", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
					"Etc/GMT+5", "Mars/Olympus", "Local", "America/Argentina/Buenos_Aires", "Europe/London"))
		}
	case 2:
		if k == kBool || k == kAny {
			return fmt.Sprintf(`(semverCompare %q %s)`, g.pick(">= 1.2.0", "~1.2", "^1.0.0", "1.x", "< 2.0.0-0",
				">1.2.3-alpha <1.3", "=1.2.3", "!=1.2.3", "1.2.3 - 1.4", "^0.2.3", "~1", ">=1.0.0, <2.0.0 || 3.x", "*",
				"bad constraint"), g.pick(`.semver`, `.semver2`, `"1.2.3"`, `"1.3.0-rc.1"`, `"v1.2"`, `.badsemver`,
				`"2.0.0"`, `"0.2.5"`))
		}
	case 3:
		if k == kStr || k == kAny || k == kInt {
			return fmt.Sprintf(`(semver %s).%s`, g.pick(`.semver`, `.semver2`, `"1.2.3-beta.1+b"`, `"v3"`, `"1.2"`),
				g.pick("Major", "Minor", "Patch", "Prerelease", "Metadata", "Original", "String"))
		}
	case 4:
		if k == kStr || k == kAny {
			return fmt.Sprintf(`(date %q (toDate %q %q))`, g.pick("2006-01-02", "Jan 2, 2006 at 3:04pm (MST)",
				"20060102150405", "2006-01-02T15:04:05.000Z07:00"), "2006-01-02 15:04:05", g.pick("2024-02-29 13:45:00",
				"1999-12-31 23:59:59", "bad"))
		}
	case 5:
		if k == kStr || k == kAny {
			return fmt.Sprintf(`(decryptAES %q .aesct)`, g.pick("pw", "wrong"))
		}
	case 6:
		if k == kMap || k == kAny {
			return g.pick(`(fromYaml .yaml11)`, `(fromYaml .yamllist)`, `(fromYaml .yaml)`)
		}
	case 7:
		if k == kStr || k == kAny {
			return fmt.Sprintf(`(toYaml %s)`, g.pick(`(fromYaml .yaml11)`, `(fromYaml .yaml)`, `(list "y" "n" "on" "1.0")`,
				`(dict "a" "yes" "b" (list))`, `(fromJson .json)`))
		}
	case 8:
		if k == kStr || k == kAny {
			return fmt.Sprintf(`(regexFindAll %s %s %d | join ",")`, g.pick(`"[a-z]+"`, `"\\d"`, `"(x"`), g.expr(kStr), g.r.IntN(4)-1)
		}
	}
	// A function of the catalog whose result fits.
	for tries := 0; tries < 20; tries++ {
		f := catalog[g.r.IntN(len(catalog))]
		if k != kAny && f.out != k && f.out != kAny {
			continue
		}
		switch f.name {
		case "fromYaml":
			// Only documents both parsers read: their syntax error messages differ (libyaml's and yaml-rust2's),
			// which the fixed cases cover.
			return fmt.Sprintf(`(fromYaml %s)`, g.pick(`.yaml`, `.yaml11`, `.yamllist`, `"a: 1"`, `""`,
				`(toYaml (dict "a" (list 1 "y")))`, `(toYaml (fromYaml .yaml11))`))
		case "keys", "values":
			// Go iterates maps in random order here: only a sorted result is comparable.
			return fmt.Sprintf(`(%s %s | sortAlpha)`, f.name, g.expr(kMap))
		}
		args := make([]string, len(f.args))
		for i, a := range f.args {
			args[i] = g.expr(a)
		}
		if g.r.IntN(3) == 0 && len(args) > 0 {
			// Pipe the last argument in.
			last := args[len(args)-1]
			return fmt.Sprintf(`(%s | %s)`, last, strings.TrimSpace(f.name+" "+strings.Join(args[:len(args)-1], " ")))
		}
		return fmt.Sprintf(`(%s %s)`, f.name, strings.Join(args, " "))
	}
	return g.leaf(k)
}

func (g *gen) stmt(depth int) string {
	switch n := g.r.IntN(10); {
	case n < 4 || depth > 2:
		return "{{ " + g.expr(kAny) + " }}"
	case n == 4:
		return fmt.Sprintf("{{ if %s }}T%s{{ else }}F{{ end }}", g.expr(kAny), g.stmt(depth+1))
	case n == 5:
		return fmt.Sprintf("{{ range $i, $v := %s }}[{{ $i }}={{ $v }}]%s{{ end }}", g.expr(kList), g.stmt(depth+1))
	case n == 6:
		return fmt.Sprintf("{{ range $k, $v := %s }}{{ $k }}:{{ $v }};{{ end }}", g.expr(kMap))
	case n == 7:
		return fmt.Sprintf("{{ with %s }}<{{ . }}>{{ else }}none{{ end }}", g.expr(kAny))
	case n == 8:
		return fmt.Sprintf("{{- $x := %s -}} ({{ $x }})", g.expr(kAny))
	default:
		return "text-" + g.pick("a", "é", "\n", " ")
	}
}

// datasets are the data maps templates run over.
func datasets() map[string]map[string]string {
	def := map[string]string{
		"user":      "admin",
		"password":  "s3cr3t!&<>",
		"db-host":   "db.example.com",
		"port":      "5432",
		"empty":     "",
		"json":      `{"a":[1,2,{"b":null}],"c":"d","e":1.5,"f":true,"g":{"h":"i"},"big":12345678901}`,
		"yaml":      "a: 1\nb: [x, y]\nc: {d: e}\nname: app\n",
		"yaml11":    yaml11,
		"yamlbad":   "a: [1, 2\nb: }",
		"yamllist":  "- a\n- b\n",
		"list":      "a,b,c,,d",
		"b64":       "aGVsbG8gd29ybGQ=",
		"badb64":    "not*base64",
		"hex":       "68656c6c6f",
		"unicode":   "Ünïcödé ß ﬁ 日本",
		"multiline": "line1\nline2\n  indented\n",
		"semver":    "1.2.3-beta.1+build.5",
		"semver2":   "v2.0",
		"badsemver": "1.2.x.y",
		"num":       "42",
		"float":     "3.14159",
		"neg":       "-7",
		"url":       "https://user:pw@example.com:8443/p/a?q=1#frag",
		// encryptAES "pw" "the plaintext", made once by Go's sprig.
		"aesct": "IAxkTn5+wCqP0Uck/fOYvv3Z8HMiTvPId984/aHsekI=",
	}
	return map[string]map[string]string{"default": def}
}

// yaml11 is read the YAML 1.1 way by ESO's sigs.k8s.io/yaml (go.yaml.in/yaml/v2): y, on, off are booleans,
// 0x/0o/0b and a leading 0 are integers, merge keys and anchors work, non-string keys become strings.
const yaml11 = `list: [y, n, yes, no, on, off, "y", ~, 0x1F, 0o17, 017, 1_000, 1.5e3, .inf, -.Inf, 2001-12-14, 12:30, 0b101]
plain: hello world
bools: {a: True, b: FALSE, c: Y, d: NO}
base: &base {x: 1, y: two}
merged:
  <<: *base
  y: three
multi: |
  line one
  line two
folded: >
  a
  b
keys: {1: one, 2.5: two, true: three, 0x10: four}
quoted: ["on", 'off', "1"]
`

func generate(seed uint64, n int) *doc {
	d := &doc{
		Note: fmt.Sprintf("Random templates (gotemplate gen -seed %d -n %d) and the results of Go's text/template with "+
			"ESO v2.9's function map. Data values are base64.", seed, n),
		TemplateName: templateName,
		Datasets:     encodeDatasets(datasets()),
	}
	keys := make([]string, 0)
	for k := range datasets()["default"] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x5eed)), keys: keys}
	for i := 0; i < n; i++ {
		var b strings.Builder
		for j := 0; j < 1+g.r.IntN(3); j++ {
			b.WriteString(g.stmt(0))
		}
		d.Cases = append(d.Cases, caseJSON{Name: fmt.Sprintf("gen_%d_%d", seed, i), Dataset: "default", Template: b.String()})
	}
	return d
}

// withFixed adds the fixed cases (and their dataset) to a generated document.
func withFixed(d *doc) *doc {
	data, cases := fixedCases()
	d.Datasets["fixed"] = encodeDatasets(map[string]map[string]string{"fixed": data})["fixed"]
	d.Cases = append(d.Cases, cases...)
	return d
}

package main

import "fmt"

// Fixed cases, appended to every generated sample: the areas where ESO's behaviour is easy to get wrong and random
// templates rarely go (YAML 1.1 reading and writing, semantic versions, time zones, derivePassword, AES, %q).

// yamlDocs are read with fromYaml and written back with toYaml and toJson.
var yamlDocs = []string{
	"a: y\nb: n\nc: yes\nd: no\ne: on\nf: off\ng: Y\nh: NO\ni: True\nj: FALSE\n",
	"list: [y, n, yes, no, on, off, \"y\", 'on', ~, null, Null]\n",
	"ints: [0x1F, 0o17, 017, 1_000, -0b101, 0b101, +12, -0, 0, 9223372036854775807, 9223372036854775808, 18446744073709551616]\n",
	"floats: [1.5e3, .5, 1., -.inf, .Inf, 685_230.15, 1e3, 6.8523015e+5, 0.1]\n",
	"nan: .nan\n",
	"dates: [2001-12-14, 2001-12-14t21:59:43.10-05:00, 2001-12-14 21:59:43.10, 2002-12-14T21:59:43Z]\n",
	"sexagesimal: [190:20:30, 12:30, 1:20]\n",
	"base: &base {x: 1, y: two}\nmerged:\n  <<: *base\n  y: three\nbefore:\n  y: zero\n  <<: *base\n",
	"a: &a {p: 1}\nb: &b {q: 2, p: 3}\nc:\n  <<: [*a, *b]\n  r: 4\n",
	"keys: {1: one, 2.5: two, true: three, 0x10: four, 1e3: five, null: six}\n",
	"keys: {~: x}\n",
	"big: {18446744073709551615: x}\n",
	"multi: |\n  line one\n  line two\nfolded: >\n  a\n  b\n\n  c\nkeep: |+\n  kept\n\nstrip: |-\n  stripped\n",
	"quoted: [\"on\", 'off', \"1\", '1.0', \"true\", \"\\u00e9\\t\\n\"]\n",
	"bin: !!binary aGVsbG8=\nstr: !!str 123\nint: !!int \"42\"\nfloat: !!float 1\nbool: !!bool yes\n",
	"nested: {a: [1, {b: [2, 3]}], c: {d: {e: f}}}\nempty_list: []\nempty_map: {}\n",
	"- a\n- b\n",
	"just a string\n",
	"",
	"~\n",
	"a: 1\na: 2\n",
	"a: [1, 2\nb: }",
	"anchor: &x [1, 2]\nalias: *x\n",
	"self: &s [*s]\n",
	"unknown: *nope\n",
	"tab:\tvalue\n",
	"k: 'it''s'\nv: \"a\\\"b\"\n",
	"long: " + fmt.Sprintf("%0130d", 7) + "\n",
	"words: the quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n",
	"special: ['*x', '&y', '!z', '%w', '@v', '`u', '- t', '? s', ': r', 'a: b', 'c #d', '#e', '-', '?', ':']\n",
	"spaces: [' lead', 'trail ', ' both ', '']\n",
	"ctrl: \"bell\\a esc\\e nul\\0 del\\x7f\"\n",
	"unicode: [é, 日本, \"\\U0001F600\", \"\\u2028\"]\n",
	"doc1: 1\n---\ndoc2: 2\n",
	"version: 1.10\nport: 08\nzip: 01234\n",
	"time: 12:30:45\n",
	"? complex\n: key\n",
	"x: !custom value\n",
}

var semverVersions = []string{"1.2.3", "v1.2", "1.2.3-beta.1+build.5", "01.2.3", "1.2.3.4", "1.2.x", "", "v3",
	"1.0.0-rc.1", "1.0.0-alpha.10", "0.0.1", "2.0.0-0", "1.2.3-01", "1.2.3+meta.data", "99999999999999999999"}

var semverConstraints = []string{">= 1.2.0", "~1.2", "^1.0.0", "1.x", "< 2.0.0-0", ">1.2.3-alpha <1.3", "=1.2.3",
	"!=1.2.3", "1.2.3 - 1.4", "^0.2.3", "^0.0.1", "~1", ">=1.0.0, <2.0.0 || 3.x", "*", "bad constraint", ">=1.2",
	"<=1.2", ">1.2", "~>1.2.3", "=<1.3", "1.2.3 - 1.4.5 || >=3", "", "^1.2.x", "!=1.x", ">= 1.0.0-0"}

var zones = []string{"UTC", "Local", "Asia/Tokyo", "Europe/Berlin", "America/New_York", "Australia/Sydney",
	"Asia/Kolkata", "Etc/GMT+5", "America/St_Johns", "Asia/Kathmandu", "Pacific/Chatham", "America/Sao_Paulo",
	"Mars/Olympus", "", "../etc", "EST5EDT", "Europe/London"}

func fixedCases() (map[string]string, []caseJSON) {
	data := map[string]string{}
	var cases []caseJSON
	add := func(name, tpl string) {
		cases = append(cases, caseJSON{Name: name, Dataset: "fixed", Template: tpl})
	}
	for i, d := range yamlDocs {
		k := fmt.Sprintf("y%d", i)
		data[k] = d
		add("yaml_json_"+k, fmt.Sprintf(`{{ fromYaml .%s | toJson }}`, k))
		add("yaml_yaml_"+k, fmt.Sprintf(`{{ fromYaml .%s | toYaml }}`, k))
		add("yaml_print_"+k, fmt.Sprintf(`{{ fromYaml .%s }}`, k))
	}
	for i, v := range semverVersions {
		k := fmt.Sprintf("v%d", i)
		data[k] = v
		add("semver_fields_"+k, fmt.Sprintf(`{{ $v := semver .%s }}{{ $v }} {{ $v.Major }}.{{ $v.Minor }}.{{ $v.Patch }} [{{ $v.Prerelease }}] [{{ $v.Metadata }}] {{ $v.Original }} {{ $v.IncPatch }} {{ $v.IncMinor }} {{ $v.IncMajor }} {{ typeOf $v }} {{ toJson $v }} {{ add1 $v.Major }} {{ eq $v.Minor 2 }} {{ printf "%%T %%d" $v.Patch $v.Patch }}`, k))
		for j, c := range semverConstraints {
			add(fmt.Sprintf("semver_compare_%s_c%d", k, j), fmt.Sprintf(`{{ semverCompare %q .%s }}`, c, k))
		}
		add("semver_methods_"+k, fmt.Sprintf(`{{ $v := semver .%s }}{{ $w := semver "1.2.3" }}{{ $v.Compare $w }} {{ $v.LessThan $w }} {{ $v.GreaterThan $w }} {{ $v.Equal $w }} {{ $v.LessThanEqual $w }} {{ $v.GreaterThanEqual $w }}`, k))
	}
	add("semver_inc_original", `{{ (semver "v1.2.3-rc.1+m").IncPatch.Original }}`)
	add("semver_inc_string", `{{ (semver "v1.2.3-rc.1+m").IncPatch.String }}`)
	add("semver_method_args", `{{ (semver "1.2.3").LessThan }}`)
	add("semver_method_type", `{{ (semver "1.2.3").LessThan "1.3.0" }}`)
	add("semver_unknown_field", `{{ (semver "1.2.3").Nope }}`)
	add("semver_sort", `{{ $l := list (semver "1.10.0") (semver "1.9.0") }}{{ range $l }}{{ . }};{{ end }}`)
	layouts := []string{"2006-01-02 15:04:05 MST", "Mon Jan _2 3:04:05PM -0700", "2006-01-02T15:04:05Z07:00", "15:04 MST -07:00:00"}
	for i, z := range zones {
		for j, l := range layouts {
			for _, t := range []int64{0, 946684800, 1711846800, 1730595600, 1700000000} {
				add(fmt.Sprintf("zone_%d_%d_%d", i, j, t), fmt.Sprintf(`{{ dateInZone %q %d %q }}|{{ htmlDateInZone %d %q }}`, l, t, z, t, z))
			}
		}
	}
	add("date_local", `{{ date "2006-01-02 15:04 MST" 1700000000 }}`)
	add("date_time_zone", `{{ (toDate "2006-01-02 15:04" "2024-03-10 09:30") | dateInZone "2006-01-02 15:04 MST" | printf "%s" }}`)
	add("date_modify_zone", `{{ dateInZone "2006-01-02T15:04:05Z07:00" (dateModify "36h" (toDate "2006-01-02" "2024-03-09")) "America/New_York" }}`)
	for i, pw := range []struct {
		counter               int
		typ, pass, user, site string
	}{
		{1, "long", "pw", "user", "example.com"},
		{3, "maximum", "secret", "alice", "syncret.dev"},
		{1, "medium", "", "", ""},
		{7, "short", "p", "u", "s"},
		{1, "basic", "pässword", "üser", "sïte"},
		{2, "pin", "1234", "bob", "bank"},
		{1, "nope", "pw", "user", "site"},
	} {
		add(fmt.Sprintf("derive_password_%d", i), fmt.Sprintf(`{{ derivePassword %d %q %q %q %q }}`, pw.counter, pw.typ, pw.pass, pw.user, pw.site))
	}
	data["aesct"] = "IAxkTn5+wCqP0Uck/fOYvv3Z8HMiTvPId984/aHsekI="
	add("aes_decrypt", `{{ decryptAES "pw" .aesct }}`)
	add("aes_decrypt_wrong_key", `{{ decryptAES "wrong" .aesct | b64enc }}`)
	add("aes_roundtrip", `{{ encryptAES "k3y" "some text to hide" | decryptAES "k3y" }}`)
	add("aes_roundtrip_long_key", `{{ encryptAES "a key longer than thirty-two bytes in all" "x" | decryptAES "a key longer than thirty-two bytes in all" }}`)
	add("aes_empty", `[{{ encryptAES "k" "" }}][{{ decryptAES "k" "" }}]`)
	add("aes_not_base64", `{{ decryptAES "k" "***" }}`)
	add("aes_short", `{{ decryptAES "k" "AAAA" }}`)
	add("aes_not_blocks", `{{ decryptAES "k" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==" }}`)
	add("aes_iv_only", `{{ decryptAES "k" "AAAAAAAAAAAAAAAAAAAAAA==" }}`)
	add("printf_q_precision", `{{ printf "%.3q|%#q|%#q|%#q|%.2q|%#.3q|%.1q" "abcdef" "a\tb" "a`+"`"+`b" "a\nb" "\xffabc" "abcdef" "é€" }}`)
	return data, cases
}

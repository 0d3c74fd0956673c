// Command gotemplate is the oracle of syncret's template engine: Go's text/template with the sprig version
// External Secrets Operator v2.9 vendors (github.com/Masterminds/sprig/v3 at the commit its vendored copy names,
// minus env, expandenv and getHostByName, plus ESO's hexdec) and ESO's toYaml/fromYaml (sigs.k8s.io/yaml v1.6.0),
// executed as ESO executes templates: Option("missingkey=error") over a map[string]string.
//
//	gotemplate gen -seed 1 -n 400        random templates over fixed datasets and Go's results, as JSON (stdout),
//	                                     then fixed cases for YAML 1.1, semver, time zones, derivePassword, AES
//	gotemplate run < cases.json          Go's results for the given templates and datasets (same JSON shape)
//	gotemplate bench -n 2000 < cases.json  time of each template as ESO runs it, and of parse + execute alone
//	gotemplate describe < items.json     what generated keys and certificates are, minus their random parts
//	                                     (describe.go), to compare sprig's generators run by Go and by syncret
//
// The JSON is the shape of operator/template/tests/fixtures/template/go_cases.json: template_name, datasets
// (values base64), cases (name, dataset, template, output_b64 or error). Built and cached by build.sh beside this
// file; operator/template/tests/differential.rs runs it.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

// The name ESO gives a template is its target key; errors carry it.
const templateName = "tls.crt"

type caseJSON struct {
	Name      string `json:"name"`
	Dataset   string `json:"dataset"`
	Template  string `json:"template"`
	OutputB64 string `json:"output_b64,omitempty"`
	Output    string `json:"output,omitempty"`
	Error     string `json:"error,omitempty"`
}

type doc struct {
	Note         string                       `json:"note"`
	TemplateName string                       `json:"template_name"`
	Datasets     map[string]map[string]string `json:"datasets"`
	Cases        []caseJSON                   `json:"cases"`
}

// funcs is ESO v2.9's function map for the functions this oracle covers: sprig without the three functions ESO
// removes, with the glue ESO puts around libraries it also uses: hexdec, toYaml, fromYaml. ESO's own helpers
// (PKCS#12, PEM, JWK, rsaDecrypt) are not here: ESO's runtime module is not served by the Go module proxy, and its
// code is not copied into syncret; syncret's versions are checked against recorded results (go_cases.json).
func funcs() template.FuncMap {
	m := sprig.TxtFuncMap()
	delete(m, "env")
	delete(m, "expandenv")
	delete(m, "getHostByName")
	m["hexdec"] = func(v string) string {
		data, err := hex.DecodeString(v)
		if err != nil {
			return err.Error()
		}
		return string(data)
	}
	m["toYaml"] = func(v any) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	m["fromYaml"] = func(str string) map[string]any {
		out := map[string]any{}
		if err := yaml.Unmarshal([]byte(str), &out); err != nil {
			out["Error"] = err.Error()
		}
		return out
	}
	return m
}

var funcMap = funcs()

// execute runs one template as ESO does.
func execute(src string, data map[string]string) ([]byte, error) {
	t, err := template.New(templateName).Option("missingkey=error").Funcs(funcMap).Parse(src)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeDatasets(in map[string]map[string]string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for name, values := range in {
		m := map[string]string{}
		for k, v := range values {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("dataset %s key %s: %w", name, k, err)
			}
			m[k] = string(b)
		}
		out[name] = m
	}
	return out, nil
}

func encodeDatasets(in map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, values := range in {
		m := map[string]string{}
		for k, v := range values {
			m[k] = base64.StdEncoding.EncodeToString([]byte(v))
		}
		out[name] = m
	}
	return out
}

// record executes every case and fills in its result.
func record(d *doc, data map[string]map[string]string) {
	for i := range d.Cases {
		c := &d.Cases[i]
		out, err := execute(c.Template, data[c.Dataset])
		c.OutputB64, c.Output, c.Error = "", "", ""
		if err != nil {
			c.Error = err.Error()
			continue
		}
		c.OutputB64 = base64.StdEncoding.EncodeToString(out)
		if isText(out) {
			c.Output = string(out)
		}
	}
}

func isText(b []byte) bool {
	for _, r := range string(b) {
		if r == '\uFFFD' {
			return false
		}
	}
	return true
}

func readDoc() (*doc, map[string]map[string]string, error) {
	var d doc
	if err := json.NewDecoder(os.Stdin).Decode(&d); err != nil {
		return nil, nil, err
	}
	data, err := decodeDatasets(d.Datasets)
	return &d, data, err
}

func writeDoc(d *doc) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	return enc.Encode(d)
}

// bench times each case two ways, n runs each after one warm-up run:
//   - ns_per_op: as ESO's execute runs a template for one key: copy the data into a map[string]string, then
//     template.New(key).Option("missingkey=error").Funcs(the function map).Parse(src), then Execute;
//   - core_ns_per_op: Parse and Execute only (the function map attached once, to a shared base template; the data
//     map built once): text/template's own cost.
func bench(n int) error {
	d, data, err := readDoc()
	if err != nil {
		return err
	}
	type result struct {
		Name        string  `json:"name"`
		NsPerOp     float64 `json:"ns_per_op"`
		CoreNsPerOp float64 `json:"core_ns_per_op"`
		Runs        int     `json:"runs"`
	}
	var results []result
	base := template.New("").Option("missingkey=error").Funcs(funcMap)
	for _, c := range d.Cases {
		dot := data[c.Dataset]
		raw := make(map[string][]byte, len(dot))
		for k, v := range dot {
			raw[k] = []byte(v)
		}
		asESO := func() error {
			strData := make(map[string]string, len(raw))
			for k := range raw {
				strData[k] = string(raw[k])
			}
			_, err := execute(c.Template, strData)
			return err
		}
		core := func() error {
			t, err := base.New(templateName).Parse(c.Template)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			return t.Execute(&buf, dot)
		}
		var times [2]float64
		for i, f := range []func() error{asESO, core} {
			// Warm up once (and fail early on a template that does not run).
			if err := f(); err != nil {
				return fmt.Errorf("%s: %w", c.Name, err)
			}
			start := time.Now()
			for j := 0; j < n; j++ {
				if err := f(); err != nil {
					return fmt.Errorf("%s: %w", c.Name, err)
				}
			}
			times[i] = float64(time.Since(start).Nanoseconds()) / float64(n)
		}
		results = append(results, result{c.Name, times[0], times[1], n})
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(results)
}

func main() {
	// ESO's image has no zone database of its own for Local: it runs in UTC.
	time.Local = time.UTC
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gotemplate gen|run|bench|describe [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	seed := fs.Uint64("seed", 1, "gen: the random seed")
	n := fs.Int("n", 300, "gen: how many templates; bench: runs per template")
	fixed := fs.Bool("fixed", true, "gen: add the fixed cases (YAML, semver, time zones, derivePassword, AES)")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "gen":
		d := generate(*seed, *n)
		if *fixed {
			d = withFixed(d)
		}
		data, derr := decodeDatasets(d.Datasets)
		if derr != nil {
			err = derr
			break
		}
		record(d, data)
		err = writeDoc(d)
	case "run":
		d, data, rerr := readDoc()
		if rerr != nil {
			err = rerr
			break
		}
		record(d, data)
		err = writeDoc(d)
	case "bench":
		err = bench(*n)
	case "describe":
		err = describeItems()
	default:
		err = fmt.Errorf("unknown command %q (gen, run, bench, describe)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotemplate:", err)
		os.Exit(1)
	}
}

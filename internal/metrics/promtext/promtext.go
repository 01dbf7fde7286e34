// Package promtext is a strict parser of the Prometheus text exposition
// format 0.0.4, for tests: it checks what a scraper relies on rather than
// accepting whatever it can.
//
//	fams, err := promtext.Parse(body)
//	fams["go_goroutines"].Samples[0].Value
//
// Checked: every family has exactly one HELP and one TYPE line before its
// samples, and its samples are contiguous; metric and label names are
// valid; label values are quoted with only \\, \" and \n escapes; values
// parse as floats; no sample repeats a label set; histograms have
// cumulative (non-decreasing) buckets with increasing le, a +Inf bucket
// equal to _count, and a _sum.
package promtext

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Sample is one line: a name (with its _bucket/_sum/_count suffix), labels
// and value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Family is one metric family.
type Family struct {
	Name, Help, Type string
	Samples          []Sample
}

// Parse parses and validates a whole exposition.
func Parse(text string) (map[string]*Family, error) {
	fams := map[string]*Family{}
	var cur *Family
	closed := map[string]bool{}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("exposition does not end with a newline")
	}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		ln := n + 1
		switch {
		case line == "":
			return nil, fmt.Errorf("line %d: empty line", ln)
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(line[len("# HELP "):], " ")
			if !ok || !validName(name) {
				return nil, fmt.Errorf("line %d: bad HELP: %q", ln, line)
			}
			if fams[name] != nil {
				return nil, fmt.Errorf("line %d: second HELP for %s", ln, name)
			}
			if cur != nil {
				closed[cur.Name] = true
			}
			if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(help, `\\`, ""), `\n`, ""), `\`) {
				return nil, fmt.Errorf("line %d: bad escape in HELP", ln)
			}
			cur = &Family{Name: name, Help: help}
			fams[name] = cur
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, ok := strings.Cut(line[len("# TYPE "):], " ")
			if !ok || cur == nil || cur.Name != name || cur.Type != "" || len(cur.Samples) > 0 {
				return nil, fmt.Errorf("line %d: TYPE not right after its HELP: %q", ln, line)
			}
			if !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, typ) {
				return nil, fmt.Errorf("line %d: bad type %q", ln, typ)
			}
			cur.Type = typ
		case strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("line %d: stray comment %q", ln, line)
		default:
			s, err := parseSample(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", ln, err)
			}
			if cur == nil || cur.Type == "" {
				return nil, fmt.Errorf("line %d: sample before HELP/TYPE", ln)
			}
			base := s.Name
			if cur.Type == "histogram" {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if strings.HasSuffix(base, suf) {
						base = strings.TrimSuffix(base, suf)
						break
					}
				}
				if base == s.Name {
					return nil, fmt.Errorf("line %d: histogram sample %s without suffix", ln, s.Name)
				}
			}
			if base != cur.Name {
				if closed[base] || fams[base] != nil {
					return nil, fmt.Errorf("line %d: %s samples are not contiguous", ln, base)
				}
				return nil, fmt.Errorf("line %d: sample %s under family %s", ln, s.Name, cur.Name)
			}
			cur.Samples = append(cur.Samples, s)
		}
	}
	for _, f := range fams {
		if f.Type == "" {
			return nil, fmt.Errorf("%s: no TYPE", f.Name)
		}
		seen := map[string]bool{}
		for _, s := range f.Samples {
			k := s.Name + fmt.Sprint(s.Labels)
			if seen[k] {
				return nil, fmt.Errorf("%s: duplicate sample %s", f.Name, k)
			}
			seen[k] = true
		}
		if f.Type == "histogram" {
			if err := checkHistogram(f); err != nil {
				return nil, err
			}
		}
	}
	return fams, nil
}

func checkHistogram(f *Family) error {
	type series struct {
		les          []float64
		counts       []float64
		count        float64
		hasSum, hasC bool
	}
	all := map[string]*series{}
	get := func(l map[string]string) *series {
		c := map[string]string{}
		for k, v := range l {
			if k != "le" {
				c[k] = v
			}
		}
		k := fmt.Sprint(c)
		if all[k] == nil {
			all[k] = &series{}
		}
		return all[k]
	}
	for _, s := range f.Samples {
		sr := get(s.Labels)
		switch {
		case strings.HasSuffix(s.Name, "_bucket"):
			le, ok := s.Labels["le"]
			if !ok {
				return fmt.Errorf("%s: bucket without le", f.Name)
			}
			v, err := strconv.ParseFloat(le, 64)
			if err != nil {
				return fmt.Errorf("%s: bad le %q", f.Name, le)
			}
			if n := len(sr.les); n > 0 && (v <= sr.les[n-1] || s.Value < sr.counts[n-1]) {
				return fmt.Errorf("%s%v: buckets not increasing and cumulative", f.Name, s.Labels)
			}
			sr.les = append(sr.les, v)
			sr.counts = append(sr.counts, s.Value)
		case strings.HasSuffix(s.Name, "_sum"):
			sr.hasSum = true
		case strings.HasSuffix(s.Name, "_count"):
			sr.hasC, sr.count = true, s.Value
		}
	}
	for k, sr := range all {
		n := len(sr.les)
		if n == 0 || !math.IsInf(sr.les[n-1], 1) {
			return fmt.Errorf("%s%s: no +Inf bucket", f.Name, k)
		}
		if !sr.hasSum || !sr.hasC || sr.counts[n-1] != sr.count {
			return fmt.Errorf("%s%s: +Inf bucket %v != _count %v (or _sum/_count missing)", f.Name, k, sr.counts[n-1], sr.count)
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validLabel(s string) bool { return validName(s) && !strings.Contains(s, ":") }

func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("no value: %q", line)
	}
	s.Name = line[:i]
	if !validName(s.Name) {
		return s, fmt.Errorf("bad metric name %q", s.Name)
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return s, fmt.Errorf("bad labels in %q", line)
			}
			name := rest[:eq]
			if !validLabel(name) {
				return s, fmt.Errorf("bad label name %q", name)
			}
			rest = rest[eq+2:]
			var val strings.Builder
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\n' {
					return s, fmt.Errorf("raw newline in label")
				}
				if rest[j] == '\\' {
					j++
					if j >= len(rest) {
						return s, fmt.Errorf("dangling escape")
					}
					switch rest[j] {
					case '\\':
						val.WriteByte('\\')
					case '"':
						val.WriteByte('"')
					case 'n':
						val.WriteByte('\n')
					default:
						return s, fmt.Errorf("bad escape \\%c", rest[j])
					}
					continue
				}
				val.WriteByte(rest[j])
			}
			if j >= len(rest) {
				return s, fmt.Errorf("unterminated label value in %q", line)
			}
			if _, dup := s.Labels[name]; dup {
				return s, fmt.Errorf("label %s repeated", name)
			}
			s.Labels[name] = val.String()
			rest = rest[j+1:]
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				return s, fmt.Errorf("bad label separator in %q", line)
			}
		}
	}
	if !strings.HasPrefix(rest, " ") {
		return s, fmt.Errorf("no space before value in %q", line)
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("bad value in %q", line)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("bad value %q", fields[0])
	}
	s.Value = v
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return s, fmt.Errorf("bad timestamp %q", fields[1])
		}
	}
	return s, nil
}

// Package filters parses and matches the `filters` query parameter of the
// Docker Engine API: a JSON object from a filter key to a set of values.
//
// Clients send it in two encodings and the daemon accepts both:
//
//	{"status":{"exited":true}}       the map form (docker CLI)
//	{"label":["a=b","c=d"]}         the list form (docker-py, compose)
//
// A handler parses, validates and then matches:
//
//	args, err := filters.FromParam(r.URL.Query().Get("filters"))
//	if err != nil {
//		return err // 400 "invalid filter"
//	}
//	if err := args.Validate(map[string]bool{"name": true, "label": true}); err != nil {
//		return err // 400 "invalid filter 'x'"
//	}
//	if !args.Match("name", c.Name) || !args.MatchKVList("label", c.Labels) {
//		continue
//	}
//
// The matchers reproduce dockerd's semantics exactly, quirks included, because
// scripts depend on them: Match treats values as unanchored regular
// expressions, FuzzyMatch as prefixes, and a value given as `false` in the map
// form is present for Get but never matches exactly.
package filters

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"skiffd/internal/errdefs"
)

// Args is a set of filter values per filter key. The zero Args is empty and
// ready to use through a pointer (Add); NewArgs returns one that is also safe
// to Add to through a copy.
type Args struct {
	// fields maps a key to its values. The boolean is what the map form
	// carried for the value: dockerd keeps `{"k":{"v":false}}` as a present
	// but never exactly matching value, and so do we.
	fields map[string]map[string]bool
}

// KeyValuePair is one key and value, an argument of NewArgs.
type KeyValuePair struct {
	Key   string
	Value string
}

// Arg returns a KeyValuePair for NewArgs.
func Arg(key, value string) KeyValuePair {
	return KeyValuePair{Key: key, Value: value}
}

// NewArgs returns Args holding the given pairs.
func NewArgs(kv ...KeyValuePair) Args {
	a := Args{fields: map[string]map[string]bool{}}
	for _, p := range kv {
		a.Add(p.Key, p.Value)
	}
	return a
}

// invalidFilter builds dockerd's error for a bad filter key or value:
// "invalid filter", "invalid filter 'key'" or "invalid filter 'key=[v1 v2]'".
// It is always a client error (400).
func invalidFilter(key string, values []string) error {
	msg := "invalid filter"
	if key != "" {
		if values != nil {
			msg = fmt.Sprintf("invalid filter '%s=%s'", key, values)
		} else {
			msg = "invalid filter '" + key + "'"
		}
	}
	return errdefs.InvalidParameter(errors.New(msg))
}

// FromParam parses the value of a `filters` query parameter. The empty string
// is an empty Args. The map form is tried first and the list form second, as
// dockerd does; JSON that is neither (syntax errors, other shapes, mixed
// forms) is an InvalidParameter error worded "invalid filter", like modern
// dockerd (20.10 answered 500 with the decoder's message instead).
func FromParam(p string) (Args, error) {
	if p == "" {
		return NewArgs(), nil
	}
	var byMap map[string]map[string]bool
	if err := json.Unmarshal([]byte(p), &byMap); err == nil {
		if byMap == nil {
			byMap = map[string]map[string]bool{}
		}
		return Args{fields: byMap}, nil
	}
	var byList map[string][]string
	if err := json.Unmarshal([]byte(p), &byList); err != nil {
		return NewArgs(), invalidFilter("", nil)
	}
	a := Args{fields: make(map[string]map[string]bool, len(byList))}
	for key, values := range byList {
		set := make(map[string]bool, len(values))
		for _, v := range values {
			set[v] = true
		}
		a.fields[key] = set
	}
	return a, nil
}

// ToParam encodes a in the map form with sorted keys, or returns "" when a is
// empty, the way the docker CLI leaves the parameter out.
func ToParam(a Args) (string, error) {
	if a.Len() == 0 {
		return "", nil
	}
	b, err := json.Marshal(a.fields)
	if err != nil {
		return "", fmt.Errorf("encode filters: %w", err)
	}
	return string(b), nil
}

// Get returns the values of key in sorted order; never nil, so that it
// encodes as [] like dockerd's.
func (a Args) Get(key string) []string {
	values := slices.AppendSeq(make([]string, 0, len(a.fields[key])), maps.Keys(a.fields[key]))
	slices.Sort(values)
	return values
}

// Keys returns the keys in sorted order.
func (a Args) Keys() []string {
	return slices.Sorted(maps.Keys(a.fields))
}

// Len returns the number of keys.
func (a Args) Len() int {
	return len(a.fields)
}

// Contains reports whether key is present, even with no values.
func (a Args) Contains(key string) bool {
	_, ok := a.fields[key]
	return ok
}

// Add adds value to the set of key.
func (a *Args) Add(key, value string) {
	if a.fields == nil {
		a.fields = map[string]map[string]bool{}
	}
	set := a.fields[key]
	if set == nil {
		set = map[string]bool{}
		a.fields[key] = set
	}
	set[value] = true
}

// Del removes value from the set of key, and key itself once its set is
// empty.
func (a Args) Del(key, value string) {
	delete(a.fields[key], value)
	if len(a.fields[key]) == 0 {
		delete(a.fields, key)
	}
}

// Clone returns a deep copy of a.
func (a Args) Clone() Args {
	c := Args{fields: make(map[string]map[string]bool, len(a.fields))}
	for k, set := range a.fields {
		c.fields[k] = maps.Clone(set)
	}
	return c
}

// Validate returns an InvalidParameter error "invalid filter 'key'" for the
// first key (in sorted order, so the message is deterministic) that accepted
// does not allow.
func (a Args) Validate(accepted map[string]bool) error {
	for _, key := range a.Keys() {
		if !accepted[key] {
			return invalidFilter(key, nil)
		}
	}
	return nil
}

// ExactMatch reports whether source equals one of the values of key. It is
// true when key has no values, so an absent filter lets everything through.
func (a Args) ExactMatch(key, source string) bool {
	set := a.fields[key]
	if len(set) == 0 {
		return true
	}
	return set[source]
}

// UniqueExactMatch is ExactMatch, except that a key with more than one value
// matches nothing.
func (a Args) UniqueExactMatch(key, source string) bool {
	set := a.fields[key]
	if len(set) == 0 {
		return true
	}
	if len(set) != 1 {
		return false
	}
	return set[source]
}

// FuzzyMatch reports whether source equals one of the values of key or
// starts with one of them (how IDs are abbreviated). True when key has no
// values.
func (a Args) FuzzyMatch(key, source string) bool {
	if a.ExactMatch(key, source) {
		return true
	}
	for prefix := range a.fields[key] {
		if strings.HasPrefix(source, prefix) {
			return true
		}
	}
	return false
}

// Match reports whether source equals one of the values of key or contains a
// match of one of them read as a regular expression, unanchored as in
// dockerd: `name=web` matches "myweb1". Values that are not valid regular
// expressions only match exactly. True when key has no values.
func (a Args) Match(key, source string) bool {
	if a.ExactMatch(key, source) {
		return true
	}
	for _, expr := range a.Get(key) {
		re, err := regexp.Compile(expr)
		if err != nil {
			continue
		}
		if re.MatchString(source) {
			return true
		}
	}
	return false
}

// MatchKVList reports whether sources (labels, attributes) satisfy every
// value of key: "k" needs k to be present, "k=v" needs k to equal v. True when
// key has no values; false when it has some and sources is empty. There is no
// negated form: a value "k!=v" reads as key "k!" and value "v", as in dockerd.
func (a Args) MatchKVList(key string, sources map[string]string) bool {
	set := a.fields[key]
	if len(set) == 0 {
		return true
	}
	if len(sources) == 0 {
		return false
	}
	for value := range set {
		k, v, hasValue := strings.Cut(value, "=")
		got, ok := sources[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// GetBoolOrDefault returns the boolean value of key ("1"/"true" or
// "0"/"false"), or def when key is absent. A key present with no values, with
// neither, or with both is an InvalidParameter error worded as dockerd's:
// "invalid filter 'dangling=[maybe]'".
func (a Args) GetBoolOrDefault(key string, def bool) (bool, error) {
	set, ok := a.fields[key]
	if !ok {
		return def, nil
	}
	if len(set) == 0 {
		return def, invalidFilter(key, nil)
	}
	isFalse := set["0"] || set["false"]
	isTrue := set["1"] || set["true"]
	if isFalse == isTrue {
		return def, invalidFilter(key, a.Get(key))
	}
	return isTrue, nil
}

// WalkValues calls op for each value of key in sorted order and stops at the
// first error, which it returns.
func (a Args) WalkValues(key string, op func(value string) error) error {
	for _, v := range a.Get(key) {
		if err := op(v); err != nil {
			return err
		}
	}
	return nil
}

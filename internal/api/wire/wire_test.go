package wire

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skiffd/internal/errdefs"
)

func TestDecodeJSON(t *testing.T) {
	type body struct{ Name string }
	tests := []struct {
		name, ct, body string
		wantErr        string // substring; "" = success
		wantEmpty      bool
		wantName       string
	}{
		{"ok", "application/json", `{"Name":"x","Unknown":1}`, "", false, "x"},
		{"charset", "application/json; charset=utf-8", `{"Name":"y"}`, "", false, "y"},
		{"no content type", "", `{"Name":"z"}`, "", false, "z"},
		{"empty", "application/json", ``, "", true, ""},
		{"whitespace", "application/json", " \n", "", true, ""},
		{"wrong type", "text/plain", `{}`, "Content-Type specified (text/plain) must be 'application/json'", false, ""},
		{"malformed", "application/json", `{not json`, "invalid JSON: invalid character 'n'", false, ""},
		{"trailing", "application/json", `{"Name":"a"} {"Name":"b"}`, "unexpected content after JSON", false, ""},
		{"too big", "application/json", `{"Name":"` + strings.Repeat("a", MaxJSONBody) + `"}`, "larger than", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(tt.body))
			if tt.body == "" {
				r.Body = http.NoBody
			}
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			var b body
			empty, err := DecodeJSON(r, &b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errdefs.Status(err) != 400 {
					t.Fatalf("DecodeJSON = %v (status %d), want 400 containing %q", err, errdefs.Status(err), tt.wantErr)
				}
				return
			}
			if err != nil || empty != tt.wantEmpty || b.Name != tt.wantName {
				t.Errorf("DecodeJSON = empty %v, name %q, err %v; want %v, %q", empty, b.Name, err, tt.wantEmpty, tt.wantName)
			}
		})
	}
}

func TestBoolValue(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "no": false, "FALSE": false, "None": false, "False": false,
		"1": true, "true": true, "True": true, "yes": true, "anything": true} {
		r := httptest.NewRequest("GET", "/x?b="+v, nil)
		if got := BoolValue(r, "b"); got != want {
			t.Errorf("BoolValue(%q) = %v, want %v", v, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/x", nil)
	if !BoolValueOrDefault(r, "b", true) || BoolValueOrDefault(httptest.NewRequest("GET", "/x?b=0", nil), "b", true) {
		t.Error("BoolValueOrDefault ignores presence")
	}
}

func TestInt64ValueOrDefault(t *testing.T) {
	r := httptest.NewRequest("GET", "/x?t=5&bad=x", nil)
	if n, err := Int64ValueOrDefault(r, "t", 10); n != 5 || err != nil {
		t.Errorf("t = %d, %v", n, err)
	}
	if n, err := Int64ValueOrDefault(r, "missing", 10); n != 10 || err != nil {
		t.Errorf("missing = %d, %v", n, err)
	}
	if _, err := Int64ValueOrDefault(r, "bad", 10); errdefs.Status(err) != 400 {
		t.Errorf("bad = %v, want 400", err)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.50", "1.50", 0}, {"1.9", "1.10", -1}, {"1.50", "1.24", 1}, {"1", "1.0", 0}, {"2.0", "1.99", 1}, {"1.24.1", "1.24", 1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	ctx := WithVersion(context.Background(), "1.41")
	if !VersionLess(ctx, "1.42") || VersionLess(ctx, "1.41") || VersionLess(context.Background(), "1.42") {
		t.Error("VersionLess wrong")
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, 404, "No such container: x")
	if rec.Code != 404 || rec.Body.String() != `{"message":"No such container: x"}`+"\n" || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("WriteError = %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
	}
	rec = httptest.NewRecorder()
	WriteError(rec, 304, "not modified")
	if rec.Code != 304 || rec.Body.Len() != 0 {
		t.Errorf("WriteError 304 = %d %q, want empty body", rec.Code, rec.Body.String())
	}
}

package image

import (
	"errors"
	"fmt"
	"strings"
)

// splitWords splits s on white space outside quotes, keeping the quotes
// and escapes in the words for expandWord to process.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' && i+1 < len(s) {
				cur.WriteByte(c)
				i++
				c = s[i]
			} else if c == quote {
				quote = 0
			}
			cur.WriteByte(c)
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			inWord = true
			if c == '\\' && i+1 < len(s) {
				cur.WriteByte(c)
				i++
				c = s[i]
			} else if c == '"' || c == '\'' {
				quote = c
			}
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unexpected end of statement while looking for matching %s", quoteName(quote))
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func quoteName(q byte) string {
	if q == '"' {
		return "double-quote"
	}
	return "single-quote"
}

// expandWord removes quotes and escapes from s and expands $NAME, ${NAME},
// ${NAME:-default} and ${NAME:+alternative} from env, as the Dockerfile
// shell lexer does. Single quotes keep everything literal.
func expandWord(s string, env []string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) {
				b.WriteByte(s[i+1])
				i += 2
			} else {
				b.WriteByte(c)
				i++
			}
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", errors.New("unexpected end of statement while looking for matching single-quote")
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 2
		case '"':
			i++
			for {
				if i >= len(s) {
					return "", errors.New("unexpected end of statement while looking for matching double-quote")
				}
				if s[i] == '"' {
					i++
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$", s[i+1]) >= 0 {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == '$' {
					v, n, err := expandVar(s[i:], env)
					if err != nil {
						return "", err
					}
					b.WriteString(v)
					i += n
					continue
				}
				b.WriteByte(s[i])
				i++
			}
		case '$':
			v, n, err := expandVar(s[i:], env)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += n
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// expandVar expands the variable reference at the start of s (which begins
// with '$') and returns its value and how many bytes it took.
func expandVar(s string, env []string) (string, int, error) {
	if len(s) > 1 && s[1] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0, errors.New("missing '}'")
		}
		body := s[2:end]
		name := body
		op, word := "", ""
		for _, o := range []string{":-", ":+", "-", "+"} {
			if i := strings.Index(body, o); i > 0 {
				name, op, word = body[:i], o, body[i+len(o):]
				break
			}
		}
		if !isVarName(name) {
			return "", 0, fmt.Errorf("bad substitution: ${%s}", body)
		}
		v, set := lookupEnv(env, name)
		switch op {
		case ":-":
			if v == "" {
				v = word
			}
		case "-":
			if !set {
				v = word
			}
		case ":+":
			if v != "" {
				v = word
			}
		case "+":
			if set {
				v = word
			} else {
				v = ""
			}
		}
		return v, end + 1, nil
	}
	n := 1
	for n < len(s) && (s[n] == '_' || isAlpha(s[n]) || (n > 1 && s[n] >= '0' && s[n] <= '9')) {
		n++
	}
	if n == 1 {
		return "$", 1, nil
	}
	v, _ := lookupEnv(env, s[1:n])
	return v, n, nil
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isVarName(s string) bool {
	if s == "" || !(s[0] == '_' || isAlpha(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !(s[i] == '_' || isAlpha(s[i]) || (s[i] >= '0' && s[i] <= '9')) {
			return false
		}
	}
	return true
}

func lookupEnv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

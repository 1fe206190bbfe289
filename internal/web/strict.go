package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// encoding/json is lenient where a request must not be: it replaces
// invalid UTF-8 and lone surrogate escapes with U+FFFD, keeps the last of
// duplicate keys, and matches keys to fields case-insensitively ("Title"
// sets title). checkStrict refuses such bodies before they are decoded.

// errStrict is a body checkStrict refuses; its message is public.
type errStrict struct{ msg string }

func (e *errStrict) Error() string { return e.msg }

// checkStrict checks a JSON body: valid UTF-8, no lone surrogate escape,
// no object with two keys equal or equal but for case (at any depth), and,
// when v points to a struct, top-level keys that are exactly its fields'
// JSON names. Syntax errors are left to the decoder.
func checkStrict(body []byte, v any) error {
	if !utf8.Valid(body) {
		return &errStrict{"the request body is not valid UTF-8"}
	}
	if loneSurrogate(body) {
		return &errStrict{"the request body has a \\u escape of a lone UTF-16 surrogate"}
	}
	fields := jsonFields(v)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		keys    map[string]string // folded → as sent; nil for an array
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or a syntax error the decoder reports
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		d, isDelim := tok.(json.Delim)
		switch {
		case isDelim && (d == '}' || d == ']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].keys != nil {
				stack[len(stack)-1].wantKey = true
			}
		case top != nil && top.keys != nil && top.wantKey:
			key, _ := tok.(string)
			if err := checkKey(top.keys, key, len(stack) == 1, fields); err != nil {
				return err
			}
			top.wantKey = false
		case isDelim: // '{' or '[' as a value
			f := &frame{}
			if d == '{' {
				f.keys, f.wantKey = map[string]string{}, true
			}
			stack = append(stack, f)
		case top != nil && top.keys != nil:
			top.wantKey = true // a scalar value
		}
	}
}

// checkKey records key in an object's keys, refusing a duplicate, a case
// variant, and (at the top level, when fields is known) a key that is not
// exactly a field's name.
func checkKey(keys map[string]string, key string, topLevel bool, fields map[string]bool) error {
	folded := strings.ToLower(strings.ToUpper(key)) // as encoding/json folds: K (Kelvin) is k, ſ is s
	if prev, ok := keys[folded]; ok {
		if prev == key {
			return &errStrict{fmt.Sprintf("the key %q appears twice", key)}
		}
		return &errStrict{fmt.Sprintf("the keys %q and %q differ only in case", prev, key)}
	}
	keys[folded] = key
	if topLevel && fields != nil && !fields[key] {
		return &errStrict{fmt.Sprintf("unknown field %q (field names are case-sensitive)", key)}
	}
	return nil
}

// jsonFields are the JSON names of the fields of the struct v points to;
// nil when v is not a pointer to a struct.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	out := map[string]bool{}
	for f := range t.Elem().Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = true
	}
	return out
}

// loneSurrogate reports whether a JSON text has a \u escape of a UTF-16
// surrogate that is not a high one followed by a low one.
func loneSurrogate(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			inString = !inString
		case inString && c == '\\' && i+1 < len(b):
			i++
			if b[i] != 'u' {
				continue
			}
			r, ok := hex4(b[i+1:])
			if !ok || r < 0xD800 || r > 0xDFFF {
				continue
			}
			if r >= 0xDC00 { // a low surrogate first
				return true
			}
			if i+10 < len(b) && b[i+5] == '\\' && b[i+6] == 'u' {
				if lo, ok := hex4(b[i+7:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 10
					continue
				}
			}
			return true
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c-'a') + 10
		case 'A' <= c && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}

// readBody reads the whole body (the server bounds it).
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// jsonTypeName is the JSON name of what a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	}
	return "object"
}

var errTrailing = errors.New("trailing data")

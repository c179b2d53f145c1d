package template

import (
	"errors"
	"strings"
)

// interp is a string holding ${{ expr }} parts. A string that is exactly
// one ${{ expr }} (whole) evaluates to the expression's value with its
// type; any other is the concatenation of its text and stringified
// expression values. "$${{" stands for a literal "${{".
type interp struct {
	src   string
	parts []interpPart
	whole bool
}

// interpPart is literal text or an expression.
type interpPart struct {
	text string
	expr *Expr
}

const (
	openMark  = "${{"
	closeMark = "}}"
)

// hasInterp reports whether s holds an expression mark (escaped or not).
func hasInterp(s string) bool { return strings.Contains(s, openMark) }

// splitInterp cuts s into text and expression sources. The end of an
// expression is the first "}}" outside string literals and outside braces
// opened inside the expression, so map literals such as {a: {b: 1}} work.
func splitInterp(s string) (parts []interpPart, whole bool, err error) {
	var text strings.Builder
	exprs := 0
	escaped := false
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], openMark)
		if j < 0 {
			text.WriteString(s[i:])
			break
		}
		j += i
		if j > 0 && s[j-1] == '$' {
			// "$${{": the first "$" escapes; keep one "${{" as text.
			text.WriteString(s[i : j-1])
			text.WriteString(openMark)
			i = j + len(openMark)
			escaped = true
			continue
		}
		text.WriteString(s[i:j])
		start := j + len(openMark)
		end, err := exprEnd(s, start)
		if err != nil {
			return nil, false, err
		}
		src := strings.TrimSpace(s[start:end])
		if src == "" {
			return nil, false, errors.New("empty ${{ }} expression")
		}
		if text.Len() > 0 {
			parts = append(parts, interpPart{text: text.String()})
			text.Reset()
		}
		parts = append(parts, interpPart{expr: &Expr{src: src}})
		exprs++
		i = end + len(closeMark)
	}
	if text.Len() > 0 {
		parts = append(parts, interpPart{text: text.String()})
	}
	whole = exprs == 1 && len(parts) == 1 && !escaped
	return parts, whole, nil
}

// exprEnd returns the index of the "}}" that closes the expression that
// starts at start.
func exprEnd(s string, start int) (int, error) {
	depth := 0
	var quote byte
	for k := start; k < len(s); k++ {
		c := s[k]
		if quote != 0 {
			switch {
			case c == '\\' && quote != '`':
				k++ // skip the escaped character
			case c == quote:
				quote = 0
			}
			continue
		}
		switch c {
		case '\'', '"', '`':
			quote = c
		case '{':
			depth++
		case '}':
			if depth == 0 {
				if strings.HasPrefix(s[k:], closeMark) {
					return k, nil
				}
				return 0, errors.New("unbalanced \"}\" in ${{ }} expression")
			}
			depth--
		}
	}
	return 0, errors.New("unterminated ${{: want a closing }}")
}

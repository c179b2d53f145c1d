package paths

import (
	"fmt"
	"path/filepath"
	"strings"
)

// SplitLocation is the one parser of loc:NAME/relative/path (DESIGN §6):
// it returns the location name and the cleaned relative path (see
// CleanRel). ok is false, with no error, when p does not start with loc:.
// With ok, an error says why p is no valid location path: no name, a
// ".." element (matching ErrOutsideRoots), a NUL byte, or a
// platform separator other than '/' inside an element.
func SplitLocation(p string) (name, rel string, ok bool, err error) {
	rest, ok := strings.CutPrefix(p, LocationPrefix)
	if !ok {
		return "", "", false, nil
	}
	name, rel, _ = strings.Cut(rest, "/")
	if name == "" {
		return "", "", true, fmt.Errorf("%q: no location name: want %sNAME/relative/path", p, LocationPrefix)
	}
	rel, err = CleanRel(rel)
	if err != nil {
		return "", "", true, fmt.Errorf("%q: %w", p, err)
	}
	return name, rel, true, nil
}

// CleanRel cleans a slash-separated path relative to a location root:
// empty and "." elements are dropped; ".." (ErrOutsideRoots), a NUL byte
// and, where the platform's separator is not '/', that separator inside an
// element are refused, so a location path reads the same on every
// platform. The result has no leading or trailing slash; "" is the root
// itself.
func CleanRel(rel string) (string, error) {
	if strings.IndexByte(rel, 0) >= 0 {
		return "", fmt.Errorf("path %q contains a NUL byte", rel)
	}
	var parts []string
	for _, c := range strings.Split(rel, "/") {
		switch {
		case c == "" || c == ".":
		case c == "..":
			return "", fmt.Errorf("path %q: %w: \"..\" is not allowed in a location path", rel, ErrOutsideRoots)
		case filepath.Separator != '/' && strings.ContainsRune(c, filepath.Separator):
			return "", fmt.Errorf("path %q: use '/' to separate the elements of a location path", rel)
		default:
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "/"), nil
}

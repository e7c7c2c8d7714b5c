package pulse

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// closeCodeRow is one row of PROTOCOL.md's close-code table: a code, or a
// range of codes, and whether a client should reconnect.
type closeCodeRow struct {
	first, last CloseCode
	reconnect   bool
}

// closeCodeRowRE matches "| 1000 | name | sent when | client should |",
// and "| 4000-4099 | ... |" for a range.
var closeCodeRowRE = regexp.MustCompile(`(?m)^\| (\d{4})(?:-(\d{4}))? \| [^|]+ \| [^|]+ \| ([^|]+?) \|$`)

// protocolCloseCodes parses the table of PROTOCOL.md's section "Close codes".
func protocolCloseCodes(t *testing.T) []closeCodeRow {
	t.Helper()
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Close codes")
	if !ok {
		t.Fatal("PROTOCOL.md has no section \"## Close codes\"")
	}
	section, _, _ = strings.Cut(section, "\n#")
	var rows []closeCodeRow
	for _, m := range closeCodeRowRE.FindAllStringSubmatch(section, -1) {
		first, _ := strconv.Atoi(m[1])
		last := first
		if m[2] != "" {
			last, _ = strconv.Atoi(m[2])
		}
		rows = append(rows, closeCodeRow{CloseCode(first), CloseCode(last), !strings.HasPrefix(m[3], "not ")})
	}
	if len(rows) < 10 {
		t.Fatalf("found %d rows in PROTOCOL.md's close-code table; the table or its parser is broken", len(rows))
	}
	return rows
}

// Retryable agrees with every code and range of PROTOCOL.md's table, and a
// code outside the table is not retryable, as the table says.
func TestRetryableMatchesProtocol(t *testing.T) {
	documented := make(map[CloseCode]bool)
	for _, row := range protocolCloseCodes(t) {
		for code := row.first; code <= row.last; code++ {
			if got := code.Retryable(); got != row.reconnect {
				t.Errorf("%v.Retryable() = %v, PROTOCOL.md says reconnect %v", code, got, row.reconnect)
			}
			documented[code] = true
		}
	}
	for code := CloseCode(0); code < 5000; code++ {
		if !documented[code] && code.Retryable() {
			t.Errorf("%v.Retryable() = true, but PROTOCOL.md does not list it: do not reconnect", code)
		}
	}
}

// Every CloseCode constant of close.go is in PROTOCOL.md's table.
func TestCloseCodesDocumented(t *testing.T) {
	documented := make(map[CloseCode]bool)
	for _, row := range protocolCloseCodes(t) {
		if row.first == row.last {
			documented[row.first] = true
		}
	}
	defined := closeCodeConstants(t)
	if len(defined) < len(closeCodeNames) {
		t.Fatalf("found %d CloseCode constants in close.go, fewer than the %d named codes", len(defined), len(closeCodeNames))
	}
	for name, code := range defined {
		if !documented[code] {
			t.Errorf("%s (%d) is not in PROTOCOL.md's close-code table", name, code)
		}
	}
}

// closeCodeConstants parses close.go and returns its constants of type
// CloseCode by name.
func closeCodeConstants(t *testing.T) map[string]CloseCode {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "close.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	codes := make(map[string]CloseCode)
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || !isIdent(spec.Type, "CloseCode") {
			return true
		}
		for i, name := range spec.Names {
			lit, ok := spec.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.INT {
				t.Fatalf("%s is not an integer literal", name.Name)
			}
			code, _ := strconv.Atoi(lit.Value)
			codes[name.Name] = CloseCode(code)
		}
		return false
	})
	return codes
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

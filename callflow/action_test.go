package callflow

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// An action type is whole or does not compile: testdata/incomplete holds a
// new type that leaves out sequences, and the type checker refuses it for
// that method and nothing else. With sequences added it compiles; with any
// one method of actionType taken away instead, it is refused for that one.
// So a type cannot forget to say what it writes, plays or looks like, as
// it could when those were optional interfaces and central switches.
func TestActionTypeIsWhole(t *testing.T) {
	fset := token.NewFileSet()
	pkg, imp := callflowSources(t, fset)
	example := filepath.Join("testdata", "incomplete", "action_example.go")
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	check := func(src string) []string {
		t.Helper()
		f, err := parser.ParseFile(fset, example, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		var errs []string
		conf := types.Config{Importer: imp, Error: func(err error) { errs = append(errs, err.(types.Error).Msg) }}
		_, _ = conf.Check("github.com/eslapp/eslapp/callflow", fset, append(pkg[:len(pkg):len(pkg)], f), nil)
		return errs
	}
	// refusedFor: every error is the missing method's (one per place the
	// type is used as an actionType: actionTypes, compile's return).
	refusedFor := func(t *testing.T, errs []string, method string) {
		t.Helper()
		want := "*exampleNode does not implement actionType (missing method " + method + ")"
		for _, e := range errs {
			if !strings.HasSuffix(e, want) {
				t.Errorf("type error %q, want only %q", e, want)
			}
		}
		if len(errs) == 0 {
			t.Errorf("the example compiles without %s", method)
		}
	}
	refusedFor(t, check(string(src)), "sequences")

	whole := string(src) + "\nfunc (n *exampleNode) sequences() map[string]*Sequence { return nil }\n"
	if errs := check(whole); len(errs) > 0 {
		t.Fatalf("with sequences, the example does not compile: %q", errs)
	}
	iface := actionTypeMethods(t, fset, pkg, imp)
	for _, m := range iface {
		t.Run(m, func(t *testing.T) {
			// Cutting run out leaves its imports unused: not the point.
			errs := slices.DeleteFunc(check(withoutMethod(t, whole, m)), func(e string) bool {
				return strings.HasSuffix(e, "imported and not used")
			})
			refusedFor(t, errs, m)
		})
	}
	// What every type must say about itself stays required.
	for _, m := range []string{"keys", "compile", "targets", "ends", "reads", "writes", "sequences", "drawing", "hold", "run"} {
		if !slices.Contains(iface, m) {
			t.Errorf("actionType no longer requires %s (its methods: %v)", m, iface)
		}
	}
}

// callflowSources parses the package's own files (as the go command builds
// it) and returns an importer of its dependencies' export data.
func callflowSources(t *testing.T, fset *token.FileSet) ([]*ast.File, types.Importer) {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}\t{{join .GoFiles \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	exports := map[string]string{}
	var files []*ast.File
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, rest, _ := strings.Cut(line, "\t")
		export, goFiles, _ := strings.Cut(rest, "\t")
		exports[path] = export
		if path != "github.com/eslapp/eslapp/callflow" {
			continue
		}
		for _, name := range strings.Fields(goFiles) {
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatalf("go list found no files of callflow:\n%s", out)
	}
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) { return os.Open(exports[path]) })
	return files, imp
}

// actionTypeMethods lists the methods of actionType as the package declares
// it.
func actionTypeMethods(t *testing.T, fset *token.FileSet, files []*ast.File, imp types.Importer) []string {
	t.Helper()
	conf := types.Config{Importer: imp}
	pkg, err := conf.Check("github.com/eslapp/eslapp/callflow", fset, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	iface := pkg.Scope().Lookup("actionType").Type().Underlying().(*types.Interface)
	var names []string
	for i := range iface.NumMethods() {
		names = append(names, iface.Method(i).Name())
	}
	return names
}

// withoutMethod is src, a file of package callflow, without exampleNode's
// method name.
func withoutMethod(t *testing.T, src, name string) string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil && fd.Name.Name == name {
			tf := fset.File(fd.Pos())
			return src[:tf.Offset(fd.Pos())] + src[tf.Offset(fd.End()):]
		}
	}
	t.Fatalf("the example has no method %s", name)
	return ""
}

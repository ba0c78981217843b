package console

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAddUserAndParseUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if err := AddUser(path, "olga", RoleOperator, "a long password"); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(path, "victor", RoleViewer, "another password"); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(path, "olga", RoleViewer, "a new password!"); err != nil { // replaces olga's line
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("users file mode %v %v, want 0600", info.Mode(), err)
	}
	users, err := LoadUsers(path)
	if err != nil || len(users) != 2 || users["olga"].Role != RoleViewer || users["victor"].Role != RoleViewer {
		t.Fatalf("users %+v %v", users, err)
	}
	if _, ok := authenticate(users, "olga", "a new password!"); !ok {
		t.Error("olga's new password does not work")
	}
	if _, ok := authenticate(users, "olga", "a long password"); ok {
		t.Error("olga's old password still works")
	}
	if _, ok := authenticate(users, "nobody", "a long password"); ok {
		t.Error("an unknown user got in")
	}
	for _, bad := range [][3]string{{"bad name", RoleViewer, "long enough pw"}, {"x", "admin", "long enough pw"}, {"x", RoleViewer, "short"}, {"x:y", RoleViewer, "long enough pw"}} {
		if err := AddUser(path, bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("AddUser%v: no error", bad)
		}
	}
	for _, bad := range []string{"olga:operator", "olga:root:$2a$10$abc", "olga:viewer:plaintext", "a b:viewer:x"} {
		if _, err := ParseUsers(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseUsers(%q): no error", bad)
		}
	}
	if u, err := ParseUsers(strings.NewReader("# comment\n\n")); err != nil || len(u) != 0 {
		t.Errorf("comments only: %v %v", u, err)
	}
}

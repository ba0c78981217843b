package console

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Roles.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
)

// User is one console user.
type User struct {
	Name string
	Role string
	hash []byte
}

// CanAct reports whether the user may change anything.
func (u User) CanAct() bool { return u.Role == RoleOperator }

// validName checks a user name: 1-64 letters, digits, '.', '_', '@' or '-'.
func validName(name string) error {
	if name == "" || len(name) > 64 || strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") != "" {
		return fmt.Errorf("user name %q: want 1-64 letters, digits, '.', '_', '@' or '-'", name)
	}
	return nil
}

func validRole(role string) error {
	if role != RoleViewer && role != RoleOperator {
		return fmt.Errorf("role %q: want viewer or operator", role)
	}
	return nil
}

// ParseUsers reads a users file: one name:role:bcrypt-hash line per user;
// blank lines and lines starting with # are skipped.
func ParseUsers(r io.Reader) (map[string]User, error) {
	users := map[string]User{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		parts := strings.SplitN(text, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("users line %d: want name:role:bcrypt-hash", line)
		}
		u := User{Name: parts[0], Role: parts[1], hash: []byte(parts[2])}
		if err := validName(u.Name); err != nil {
			return nil, fmt.Errorf("users line %d: %w", line, err)
		}
		if err := validRole(u.Role); err != nil {
			return nil, fmt.Errorf("users line %d: %w", line, err)
		}
		if _, err := bcrypt.Cost(u.hash); err != nil {
			return nil, fmt.Errorf("users line %d: the hash of %s is not bcrypt: %w", line, u.Name, err)
		}
		if _, dup := users[u.Name]; dup {
			return nil, fmt.Errorf("users line %d: %s appears twice", line, u.Name)
		}
		users[u.Name] = u
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return users, nil
}

// LoadUsers reads the users file at path.
func LoadUsers(path string) (map[string]User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	users, err := ParseUsers(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return users, nil
}

// MinPasswordLength is the shortest password AddUser accepts.
const MinPasswordLength = 10

// AddUser writes name's line (replacing an existing one) to the users file
// at path, creating it with mode 0600. The password is hashed with bcrypt.
func AddUser(path, name, role, password string) error {
	if err := validName(name); err != nil {
		return err
	}
	if err := validRole(role); err != nil {
		return err
	}
	if len(password) < MinPasswordLength {
		return fmt.Errorf("password: at least %d characters", MinPasswordLength)
	}
	if len(password) > 72 {
		return errors.New("password: at most 72 bytes (bcrypt's limit)")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	var kept []string
	if raw, err := os.ReadFile(path); err == nil {
		if _, err := ParseUsers(strings.NewReader(string(raw))); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, l := range strings.Split(string(raw), "\n") {
			if n, _, _ := strings.Cut(strings.TrimSpace(l), ":"); n == name || strings.TrimSpace(l) == "" {
				continue
			}
			kept = append(kept, l)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("users file: %w", err)
	}
	kept = append(kept, name+":"+role+":"+string(hash))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(kept, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	return nil
}

// dummyHash makes a failed login for an unknown name cost as much as one
// for a known name.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("domainguard-no-such-user"), bcrypt.DefaultCost)

// authenticate checks name and password against users.
func authenticate(users map[string]User, name, password string) (User, bool) {
	u, ok := users[name]
	hash := u.hash
	if !ok {
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		return User{}, false
	}
	return u, true
}

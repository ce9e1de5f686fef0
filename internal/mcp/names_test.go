package mcp

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestSpecNames(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	for _, c := range []struct{ server, tool, want string }{
		{"calc", "add", "calc_add"},
		{"gh", "search.issues", "gh_search_issues"},
		{"gh", "créer", "gh_cr_er"},
		{"gh", "a/b c", "gh_a_b_c"},
	} {
		if got := specName(c.server, c.tool); got != c.want {
			t.Errorf("specName(%q, %q) = %q, want %q", c.server, c.tool, got, c.want)
		}
	}
	long := strings.Repeat("x", 80)
	a, b := specName("srv", long), specName("srv", long+"y")
	if len(a) != 64 || !valid.MatchString(a) || a == b || !strings.HasPrefix(a, "srv_xxx") {
		t.Errorf("long names %q %q", a, b)
	}
	if specName("srv", long) != a {
		t.Error("names are not stable")
	}

	// Collisions: every colliding tool gets a hashed name, whatever the order.
	pairs := [][2]string{{"a_b", "c"}, {"a", "b_c"}, {"s", "x.y"}, {"s", "x_y"}, {"s", "z"}, {"s", "z"}}
	names, ok := assignNames(pairs)
	t.Log(names)
	if !ok[4] || ok[5] {
		t.Errorf("a tool listed twice: %v %v", names, ok)
	}
	seen := map[string]bool{}
	for i, n := range names[:5] {
		if !valid.MatchString(n) || seen[n] || !ok[i] {
			t.Errorf("name %d %q: invalid or repeated", i, n)
		}
		seen[n] = true
	}
	if names[4] != "s_z" || !strings.HasPrefix(names[0], "a_b_c_") || !strings.HasPrefix(names[2], "s_x_y_") {
		t.Errorf("names %v", names)
	}
	rev := slices.Clone(pairs[:4])
	slices.Reverse(rev)
	names2, _ := assignNames(rev)
	slices.Reverse(names2)
	if !slices.Equal(names2, names[:4]) {
		t.Errorf("names depend on order: %v vs %v", names2, names[:4])
	}
}

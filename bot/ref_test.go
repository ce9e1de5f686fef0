package bot

import (
	"slices"
	"testing"
)

func TestRefNotifier(t *testing.T) {
	t.Parallel()
	var n RefNotifier
	var early, late []string
	n.OnRef(func(ref string) { early = append(early, ref) })
	n.Set("")
	n.Set("C1/1")
	n.Set("C1/1")
	n.OnRef(func(ref string) { late = append(late, ref) })
	n.Set("")
	n.Set("C1/2")
	if want := []string{"C1/1", "C1/2"}; !slices.Equal(early, want) {
		t.Errorf("registered before: %q, want %q", early, want)
	}
	if want := []string{"C1/1", "C1/2"}; !slices.Equal(late, want) {
		t.Errorf("registered after the first ref: %q, want %q (at once, then the change)", late, want)
	}
	if n.Ref() != "C1/2" {
		t.Errorf("Ref = %q", n.Ref())
	}
}

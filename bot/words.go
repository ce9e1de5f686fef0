package bot

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// plural renders a count with its noun: "1 image", "3 images", "1 reply",
// "0 replies". many is the plural form when it is not one + "s".
func plural[T ~int | ~int64](n T, one string, many ...string) string {
	if n == 1 {
		return "1 " + one
	}
	if len(many) > 0 {
		return fmt.Sprintf("%d %s", n, many[0])
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// tokens renders a token count compactly with its noun: "1 token",
// "950 tokens", "1.2k tokens".
func tokens(n int) string {
	if n == 1 {
		return "1 token"
	}
	return compact(n) + " tokens"
}

// withArticle puts "a" or "an" before word, by its first sound as far as
// spelling tells: "an image", "a video", "a unit", "an hour".
func withArticle(word string) string {
	w := strings.ToLower(strings.TrimSpace(word))
	if w == "" {
		return "a " + word
	}
	an := strings.ContainsRune("aeiou", rune(w[0]))
	for _, p := range []string{"uni", "use", "usu", "uti", "eu", "one", "once"} {
		if strings.HasPrefix(w, p) {
			an = false
		}
	}
	for _, p := range []string{"hour", "honest", "honor", "honour", "heir"} {
		if strings.HasPrefix(w, p) {
			an = true
		}
	}
	if an {
		return "an " + word
	}
	return "a " + word
}

// money renders USD: cents for a cent or more ("$0.42", "$12.00"), and two
// significant digits below a cent, so tiny per-reply costs stay readable
// ("$0.00045", "$0.000036") instead of rounding to "$0.0000".
func money(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "$0"
	}
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if v >= 0.01 {
		return sign + "$" + strconv.FormatFloat(v, 'f', 2, 64)
	}
	decimals := 1 - int(math.Floor(math.Log10(v))) // two significant digits
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	s = strings.TrimRight(s, "0")
	return sign + "$" + strings.TrimSuffix(s, ".")
}

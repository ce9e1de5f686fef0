package bot

import "testing"

func TestMoney(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "$0"},
		{0.000036, "$0.000036"},
		{0.0000364, "$0.000036"},
		{0.00045, "$0.00045"},
		{0.0009, "$0.0009"},
		{0.00123, "$0.0012"},
		{0.009, "$0.009"},
		{0.00999, "$0.01"},
		{0.01, "$0.01"},
		{0.0125, "$0.01"},
		{0.42, "$0.42"},
		{1, "$1.00"},
		{12.345, "$12.35"},
		{1e-9, "$0.000000001"},
		{-0.5, "-$0.50"},
	}
	for _, tt := range tests {
		if got := money(tt.v); got != tt.want {
			t.Errorf("money(%g) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestPluralAndTokens(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{plural(0, "reply", "replies"), "0 replies"},
		{plural(1, "reply", "replies"), "1 reply"},
		{plural(2, "reply", "replies"), "2 replies"},
		{plural(int64(1), "usage record", "usage records"), "1 usage record"},
		{plural(1, "image"), "1 image"},
		{plural(3, "generated image"), "3 generated images"},
		{tokens(0), "0 tokens"},
		{tokens(1), "1 token"},
		{tokens(950), "950 tokens"},
		{tokens(1234), "1.2k tokens"},
		{tokens(3_400_000), "3.4M tokens"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestWithArticle(t *testing.T) {
	tests := []struct{ word, want string }{
		{"image", "an image"},
		{"audio", "an audio"},
		{"embedding", "an embedding"},
		{"video", "a video"},
		{"text", "a text"},
		{"Image", "an Image"},
		{"unit", "a unit"},
		{"hour", "an hour"},
		{"", "a "},
	}
	for _, tt := range tests {
		if got := withArticle(tt.word); got != tt.want {
			t.Errorf("withArticle(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

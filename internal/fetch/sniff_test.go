package fetch

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

var (
	jpeg = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb")
	gif  = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04")
	webp = []byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00\x30\x01\x00\x9d\x01\x2a")
	pdf  = []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
)

func TestSniff(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		file     string
		declared string
		want     string
	}{
		// Signatures win over the name and the declared type.
		{"png", png, "a.png", "image/png", "image/png"},
		{"png named txt", png, "notes.txt", "text/plain", "image/png"},
		{"png declared json", png, "data.json", "application/json", "image/png"},
		{"jpeg", jpeg, "photo.jpg", "", "image/jpeg"},
		{"jpeg named png", jpeg, "photo.png", "image/png", "image/jpeg"},
		{"gif", gif, "anim.bin", "application/octet-stream", "image/gif"},
		{"webp", webp, "x", "", "image/webp"},
		{"webp declared jpeg", webp, "x.jpg", "image/jpeg", "image/webp"},
		{"pdf", pdf, "paper.pdf", "application/pdf", "application/pdf"},
		{"pdf named go", pdf, "main.go", "text/x-go", "application/pdf"},

		// UTF-8 text: the extension says which.
		{"go", []byte("package main\n\nfunc main() {}\n"), "main.go", "", "text/x-go"},
		{"json", []byte(`{"a": [1, 2, "ü"]}`), "data.JSON", "", "application/json"},
		{"csv", []byte("a,b\n1,2\n"), "table.csv", "application/vnd.ms-excel", "text/csv"},
		{"log", []byte("2026-01-01 INFO started\n"), "server.log", "application/octet-stream", "text/plain"},
		{"yaml", []byte("key: value\nlist:\n  - 1\n"), "config.yaml", "", "application/yaml"},
		{"yml", []byte("key: value\n"), "config.yml", "", "application/yaml"},
		{"markdown", []byte("# Title\n"), "README.md", "", "text/markdown"},
		{"no extension", []byte("plain words"), "NOTES", "", "text/plain"},
		{"declared type refines", []byte(`{"a":1}`), "blob", "application/json; charset=utf-8", "application/json"},
		{"declared binary ignored", []byte("words"), "blob", "application/octet-stream", "text/plain"},
		{"declared html ignored", []byte("words"), "blob", "text/html", "text/plain"},
		{"empty", nil, "empty.txt", "", "text/plain"},
		{"html file", []byte("<p>a paragraph</p>"), "page.html", "text/html", "text/plain"},
		{"xml", []byte("<?xml version=\"1.0\"?><a/>"), "a.xml", "", "application/xml"},

		// Not text.
		{"binary", []byte{0x01, 0x02, 0xfe, 0xff, 0x00, 0x10}, "data.json", "application/json", "application/octet-stream"},
		{"nul byte", []byte("text\x00with a nul"), "a.txt", "text/plain", "application/octet-stream"},
		{"invalid utf-8", []byte("caf\xe9"), "a.txt", "text/plain", "application/octet-stream"},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"), "a.go", "", "application/octet-stream"},

		// HTML pages.
		{"html page", []byte(loginPage), "", "", "text/html"},
		{"html page named png", []byte(loginPage), "a.png", "image/png", "text/html"},
		{"html page upper case", []byte("<!DOCTYPE HTML>\n<HTML><BODY>x</BODY></HTML>"), "", "", "text/html"},
		{"html page with BOM", []byte("\xef\xbb\xbf" + loginPage), "", "", "text/html"},
		{"html page with leading space", []byte("\n\t  " + loginPage), "", "", "text/html"},
		{"xhtml", []byte(`<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"></html>`), "", "", "text/html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sniff(tt.data, tt.file, tt.declared); got != tt.want {
				t.Errorf("Sniff(%q, %q, %q) = %q, want %q", head(tt.data), tt.file, tt.declared, got, tt.want)
			}
		})
	}
}

func TestIsTextIsImage(t *testing.T) {
	for _, mt := range []string{"text/plain", "text/x-go", "application/json", "application/yaml", "application/xml", "application/ld+json", "image/svg+xml"} {
		if !IsText(mt) {
			t.Errorf("IsText(%q) = false", mt)
		}
	}
	for _, mt := range []string{"application/octet-stream", "application/pdf", "image/png", ""} {
		if IsText(mt) {
			t.Errorf("IsText(%q) = true", mt)
		}
	}
	for _, mt := range []string{"image/png", "image/jpeg", "image/gif", "image/webp"} {
		if !IsImage(mt) {
			t.Errorf("IsImage(%q) = false", mt)
		}
	}
	for _, mt := range []string{"image/bmp", "image/x-icon", "image/svg+xml", "application/pdf", "text/plain"} {
		if IsImage(mt) {
			t.Errorf("IsImage(%q) = true", mt)
		}
	}
}

// FuzzSniff checks that Sniff always answers a well-formed media type, and
// that signature types do not depend on the name or the declared type.
func FuzzSniff(f *testing.F) {
	for _, d := range [][]byte{png, jpeg, gif, webp, pdf, []byte(loginPage), []byte("package main\n"), {0, 1, 2}, nil} {
		f.Add(d, "a.txt", "text/plain")
	}
	f.Add([]byte("\xef\xbb\xbf<html>"), "x.html", "text/html; charset=\"")
	f.Fuzz(func(t *testing.T, data []byte, name, declared string) {
		got := Sniff(data, name, declared)
		if got == "" || strings.ContainsAny(got, " ;") || strings.Count(got, "/") != 1 {
			t.Fatalf("Sniff = %q", got)
		}
		if IsImage(got) || got == "application/pdf" || got == "text/html" {
			if again := Sniff(data, "other.go", "application/json"); again != got {
				t.Fatalf("Sniff = %q with the name and type, %q with others", got, again)
			}
		}
		if IsText(got) && got != "text/html" && (!utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0) {
			t.Fatalf("Sniff = %q for bytes that are not text", got)
		}
	})
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// check is one line of `cometbot doctor`.
type check struct {
	name string
	run  func(ctx context.Context) (detail string, err error)
}

// checker is a platform adapter that can verify its own credentials.
type checker interface {
	Check(ctx context.Context) error
}

func cmdDoctor(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stdout, "✗ configuration\n  %v\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return errors.New("doctor: the configuration is invalid")
	}
	fmt.Fprintln(stdout, "✓ configuration — environment and config file are valid")
	var cat *llm.Catalog
	checks := []check{
		{"gateway key and base URL", func(ctx context.Context) (string, error) { return checkGateway(ctx, cfg) }},
		{"model catalog", func(ctx context.Context) (string, error) {
			cat = llm.NewCatalog(llm.CatalogConfig{URL: cfg.CatalogURL})
			if err := cat.Refresh(ctx); err != nil {
				return "", fmt.Errorf("%s cannot be fetched: %s\n  fix: check COMETAPI_CATALOG_URL (default: COMETAPI_BASE_URL without /v1, plus /api/models)", cfg.CatalogURL, llm.UserMessage(err))
			}
			return fmt.Sprintf("%d models at %s", cat.Len(), cfg.CatalogURL), nil
		}},
		{"default model", func(context.Context) (string, error) {
			if cat == nil || !cat.Loaded() {
				return "", errors.New("skipped: the catalog is not available")
			}
			m, ok := cat.Lookup(cfg.Model())
			if !ok {
				sug := cat.Suggest(cfg.Model(), 3)
				return "", fmt.Errorf("%q is not in the catalog (did you mean %s?)\n  fix: set COMETBOT_DEFAULT_MODEL or default_model to a model from \"cometbot models\"", cfg.Model(), strings.Join(sug, ", "))
			}
			if !m.IsText() {
				return "", fmt.Errorf("%q is a %s model, not a text model\n  fix: pick a text model from \"cometbot models\"", m.ID, m.Type)
			}
			return fmt.Sprintf("%s (%s, $%s/$%s per M tokens)", m.ID, dash(m.Provider), num(m.Pricing.Input), num(m.Pricing.Output)), nil
		}},
		{"database", func(ctx context.Context) (string, error) { return checkDB(cfg.DBPath) }},
	}
	checks = append(checks, platformChecks(cfg)...)
	failed := 0
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		detail, err := c.run(cctx)
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "✗ %s — %v\n", c.name, err)
			continue
		}
		fmt.Fprintf(stdout, "✓ %s — %s\n", c.name, detail)
	}
	if failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", failed)
	}
	fmt.Fprintln(stdout, "All checks passed.")
	return nil
}

// checkGateway calls GET {base}/models with the key: it tells a wrong key
// (401/403) from a wrong base URL (404, redirect, HTML).
func checkGateway(ctx context.Context, cfg *config.Config) (string, error) {
	if !cfg.APIKey.Set() {
		return "", errors.New("COMETAPI_KEY is not set\n  fix: create a key in the CometAPI console and export COMETAPI_KEY")
	}
	url := cfg.BaseURL + "/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("bad COMETAPI_BASE_URL %q", cfg.BaseURL)
	}
	req.Header.Set("Authorization", "Bearer "+cfg.APIKey.Value())
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach %s: %v\n  fix: check COMETAPI_BASE_URL and the network/proxy", cfg.BaseURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	const wrongBase = "\n  fix: set COMETAPI_BASE_URL to something like https://api.cometapi.com/v1"
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("the gateway rejected the key (HTTP %d)\n  fix: check COMETAPI_KEY (copy it again from the CometAPI console)", resp.StatusCode)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return "", fmt.Errorf("%s redirects (HTTP %d): the base URL looks wrong%s", url, resp.StatusCode, wrongBase)
	case resp.StatusCode == http.StatusNotFound || ct == "text/html":
		return "", fmt.Errorf("%s answered HTTP %d (%s): the base URL looks wrong%s", url, resp.StatusCode, dash(ct), wrongBase)
	case resp.StatusCode >= 400:
		return "", fmt.Errorf("%s answered HTTP %d; the gateway may be down — try again later", url, resp.StatusCode)
	}
	return "key accepted by " + cfg.BaseURL, nil
}

// checkDB opens the database (creating it if needed) and closes it.
func checkDB(path string) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("cannot create %s: %v\n  fix: set COMETBOT_DB to a writable path", dir, err)
	}
	st, err := storage.Open(path, storage.Options{Timeout: time.Second})
	if errors.Is(err, storage.ErrLocked) {
		return path + " (in use by a running cometbot)", nil
	}
	if err != nil {
		return "", fmt.Errorf("%v\n  fix: set COMETBOT_DB to a writable file path", err)
	}
	_ = st.Close()
	return path + " is writable", nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/cometbot/cometbot/internal/mcp"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/internal/redact"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// check is one line of `cometbot doctor`.
type check struct {
	name string
	run  func(ctx context.Context) (detail string, err error)
}

// warning is a check result worth saying out loud that is not a failure:
// doctor prints it with "!" and still passes.
type warning struct{ msg string }

func (w *warning) Error() string { return w.msg }

// checker is a platform adapter that can verify its own credentials.
type checker interface {
	Check(ctx context.Context) error
}

// doctorTimeout bounds each check (the database consistency check reads
// the whole file, so it gets longer).
const (
	doctorTimeout   = 20 * time.Second
	doctorDBTimeout = 2 * time.Minute
)

// testRequestTokens is the output limit of doctor's test request to the
// default model: enough for every API's minimum, a fraction of a cent.
const testRequestTokens = 16

func cmdDoctor(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stdout, "✗ configuration\n  %v\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return errors.New("doctor: the configuration is invalid")
	}
	fmt.Fprintln(stdout, "✓ configuration — environment and config file are valid")
	sc := redact.NewScrubber(cfg.Secrets()...) // nothing below prints a secret, even inside an error
	var cat *llm.Catalog
	checks := []check{
		{"gateway key and base URL", func(ctx context.Context) (string, error) { return checkGateway(ctx, cfg) }},
		{"model catalog", func(ctx context.Context) (string, error) {
			cat = llm.NewCatalog(llm.CatalogConfig{URL: cfg.CatalogURL})
			if err := cat.Refresh(ctx); err != nil {
				return "", fmt.Errorf("%s cannot be fetched (%v)\n  fix: check COMETAPI_CATALOG_URL (default: COMETAPI_BASE_URL without /v1, plus /api/models)", redact.Credentials(cfg.CatalogURL), redact.Error(err))
			}
			return fmt.Sprintf("%d models at %s", cat.Len(), redact.Credentials(cfg.CatalogURL)), nil
		}},
		{"default model", func(ctx context.Context) (string, error) { return checkDefaultModel(ctx, cfg, cat) }},
		{"prices", func(context.Context) (string, error) {
			if !budgetsConfigured(cfg) {
				return "no budgets configured, so prices only inform /usage", nil
			}
			if p := pricingProblem(cfg, cat); p != "" {
				return "", errors.New(p)
			}
			return fmt.Sprintf("budgets apply and %s is priced", cfg.Model()), nil
		}},
		{"open defaults", func(context.Context) (string, error) {
			if w := openDefaults(cfg); len(w) > 0 {
				return "", &warning{strings.Join(w, "\n  ")}
			}
			return "admins and budgets are configured", nil
		}},
		{"database", func(ctx context.Context) (string, error) { return checkDB(ctx, cfg.DBPath) }},
	}
	checks = append(checks, platformChecks(cfg)...)
	checks = append(checks, mcpChecks(cfg)...)
	failed, warned := 0, 0
	for _, c := range checks {
		timeout := doctorTimeout
		if c.name == "database" {
			timeout = doctorDBTimeout
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		detail, err := c.run(cctx)
		cancel()
		var w *warning
		switch {
		case errors.As(err, &w):
			warned++
			fmt.Fprintf(stdout, "! %s — %s\n", c.name, sc.String(w.Error()))
		case err != nil:
			failed++
			fmt.Fprintf(stdout, "✗ %s — %s\n", c.name, sc.String(err.Error()))
		default:
			fmt.Fprintf(stdout, "✓ %s — %s\n", c.name, sc.String(detail))
		}
	}
	if failed > 0 {
		return fmt.Errorf("doctor: %s failed", counted(failed, "check", "checks"))
	}
	if warned > 0 {
		fmt.Fprintf(stdout, "All checks passed (%s above).\n", counted(warned, "warning", "warnings"))
		return nil
	}
	fmt.Fprintln(stdout, "All checks passed.")
	return nil
}

// counted renders "1 check", "2 checks".
func counted(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// checkGateway calls GET {base}/models with the key: it tells a wrong key
// (401/403) from a wrong base URL (404, redirect, HTML).
func checkGateway(ctx context.Context, cfg *config.Config) (string, error) {
	if !cfg.APIKey.Set() {
		return "", errors.New("COMETAPI_KEY is not set\n  fix: create a key in the CometAPI console and export COMETAPI_KEY")
	}
	base := redact.Credentials(cfg.BaseURL)
	url := cfg.BaseURL + "/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("bad COMETAPI_BASE_URL %q", base)
	}
	req.Header.Set("Authorization", "Bearer "+cfg.APIKey.Value())
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach %s: %v\n  fix: check COMETAPI_BASE_URL and the network/proxy", base, redact.Error(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	const wrongBase = "\n  fix: set COMETAPI_BASE_URL to something like https://api.cometapi.com/v1"
	shown := base + "/models"
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("the gateway rejected the key (HTTP %d)\n  fix: check COMETAPI_KEY (copy it again from the CometAPI console)", resp.StatusCode)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return "", fmt.Errorf("%s redirects (HTTP %d): the base URL looks wrong%s", shown, resp.StatusCode, wrongBase)
	case resp.StatusCode == http.StatusNotFound || ct == "text/html":
		return "", fmt.Errorf("%s answered HTTP %d (%s): the base URL looks wrong%s", shown, resp.StatusCode, dash(ct), wrongBase)
	case resp.StatusCode >= 400:
		return "", fmt.Errorf("%s answered HTTP %d; the gateway may be down — try again later", shown, resp.StatusCode)
	}
	return "key accepted by " + base, nil
}

// checkDefaultModel checks the default model against the catalog (when it
// loaded) and then makes one tiny real request with it through the same
// client, routes and wire format the bot uses: a model the catalog lists
// can still be one the gateway does not serve.
func checkDefaultModel(ctx context.Context, cfg *config.Config, cat *llm.Catalog) (string, error) {
	model := cfg.Model()
	const pick = "\n  fix: set COMETBOT_DEFAULT_MODEL or default_model to a text model from \"cometbot models\""
	info, listed := llm.ModelInfo{}, false
	if cat != nil && cat.Loaded() {
		info, listed = cat.Lookup(model)
		if !listed {
			msg := fmt.Sprintf("%q is not in the catalog", model)
			if sug := cat.Suggest(model, 3); len(sug) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(sug, ", "))
			}
			return "", errors.New(msg + pick)
		}
		if !info.IsText() {
			return "", fmt.Errorf("%q is not a text model (its type is %s)%s", info.ID, dash(info.Type), pick)
		}
		model = info.ID
	}
	if !cfg.APIKey.Set() {
		return "", errors.New("skipped the test request: COMETAPI_KEY is not set")
	}
	routes := make([]llm.Route, 0, len(cfg.File.Gateway.Routes))
	for _, r := range cfg.File.Gateway.Routes {
		routes = append(routes, llm.Route{Pattern: r.Model, Format: llm.Format(r.Format)})
	}
	client, err := llm.NewClient(llm.Config{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey.Value(), Catalog: cat, Routes: routes, UserAgent: "cometbot-doctor/" + version,
		RetryDeadline: 10 * time.Second, StallTimeout: 15 * time.Second,
	})
	if err != nil {
		return "", fmt.Errorf("gateway client: %w", err)
	}
	req := llm.Request{Model: model, MaxOutputTokens: testRequestTokens,
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "Reply with the single word: ok"}}}
	if _, err := client.Stream(ctx, req, func(llm.Delta) error { return nil }); err != nil {
		return "", fmt.Errorf("a test request to %q failed: %s\n  (%v)%s", model, llm.UserMessage(err), err, requestFix(err))
	}
	detail := model + " answered a test request"
	switch {
	case listed && info.Pricing.Known():
		detail += fmt.Sprintf(" (%s, $%s/$%s per M tokens)", dash(info.Provider), num(info.Pricing.Input), num(info.Pricing.Output))
	case listed:
		detail += fmt.Sprintf(" (%s, no price in the catalog)", dash(info.Provider))
	}
	return detail, nil
}

// requestFix is the fix line for a failed test request.
func requestFix(err error) string {
	switch {
	case errors.Is(err, llm.ErrModel), errors.Is(err, llm.ErrBadRequest):
		return "\n  fix: pick a model the gateway serves: set COMETBOT_DEFAULT_MODEL or default_model (see \"cometbot models\"), or route it with gateway.routes"
	case errors.Is(err, llm.ErrAuth):
		return "\n  fix: check COMETAPI_KEY (copy it again from the CometAPI console)"
	case errors.Is(err, llm.ErrQuota):
		return "\n  fix: top up the gateway account or raise its quota"
	case errors.Is(err, llm.ErrBaseURL):
		return "\n  fix: set COMETAPI_BASE_URL to something like https://api.cometapi.com/v1"
	}
	return "\n  fix: try again later; if it keeps failing, pick another default model"
}

// checkDB opens the database (creating it if needed), runs bbolt's
// consistency check over it, and says how to restore a corrupted file.
func checkDB(ctx context.Context, path string) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("cannot create %s: %v\n  fix: set COMETBOT_DB to a writable path", dir, err)
	}
	st, err := storage.Open(path, storage.Options{Timeout: time.Second})
	if errors.Is(err, storage.ErrLocked) {
		return path + " (in use by a running cometbot; stop it to run the consistency check)", nil
	}
	if errors.Is(err, storage.ErrCorrupt) {
		return "", fmt.Errorf("%v\n  fix: %s", err, storage.RestoreAdvice(path))
	}
	if err != nil {
		return "", fmt.Errorf("%v\n  fix: set COMETBOT_DB to a writable file path", err)
	}
	defer st.Close()
	if err := st.Check(ctx); err != nil {
		if errors.Is(err, storage.ErrCorrupt) {
			return "", fmt.Errorf("%v\n  fix: %s", err, storage.RestoreAdvice(path))
		}
		return "", err
	}
	return path + " is writable and passed the consistency check", nil
}

// mcpChecks connects to every configured MCP server once (concurrently) and
// reports each one's status and tool count. A server that is down fails its
// check with the error; the bot itself would keep retrying it.
func mcpChecks(cfg *config.Config) []check {
	servers := cfg.File.Tools.MCPServers
	if len(servers) == 0 {
		return nil
	}
	var (
		once     sync.Once
		statuses map[string]mcp.ServerStatus
	)
	probe := func(ctx context.Context) {
		m := mcpManager(cfg, slog.New(slog.DiscardHandler))
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Run(rctx) }()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			settled := true
			for _, st := range m.Status() {
				settled = settled && (st.Connected || st.Err != "")
			}
			if settled {
				break
			}
			select {
			case <-ctx.Done():
				break wait
			case <-tick.C:
			}
		}
		statuses = make(map[string]mcp.ServerStatus)
		for _, st := range m.Status() {
			statuses[st.Name] = st
		}
		cancel()
		<-done
	}
	var out []check
	for _, s := range servers {
		out = append(out, check{"mcp " + s.Name, func(ctx context.Context) (string, error) {
			once.Do(func() { probe(ctx) })
			st := statuses[s.Name]
			switch {
			case st.Connected:
				return fmt.Sprintf("connected (%s %s), %s", st.Transport, st.Target, pluralTools(st.Tools)), nil
			case st.Err != "":
				return "", fmt.Errorf("not reachable (%s %s): %s — the bot keeps retrying it; check tools.mcp_servers", st.Transport, st.Target, st.Err)
			}
			return "", fmt.Errorf("no answer within the check's time (%s %s) — check tools.mcp_servers", st.Transport, st.Target)
		}})
	}
	return out
}

func pluralTools(n int) string {
	if n == 1 {
		return "1 tool"
	}
	return fmt.Sprintf("%d tools", n)
}

package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultCatalogURL is CometAPI's public model catalog.
const DefaultCatalogURL = "https://api.cometapi.com/api/models"

// DefaultCatalogRefresh is the default background refresh interval.
const DefaultCatalogRefresh = time.Hour

// ModelInfo is one catalog record.
type ModelInfo struct {
	// ID is the model id to put in requests, e.g. "gpt-4o-mini".
	ID string `json:"id"`
	// Provider is the vendor, e.g. "OpenAI", "Anthropic", "Google".
	Provider string `json:"provider"`
	// Type is the catalog's model_type: "text", "image", "video", ...
	Type string `json:"model_type"`
	// Features are the catalog's feature tags, as given.
	Features []string `json:"features"`
	// Pricing is the price list.
	Pricing Pricing `json:"pricing"`
	// APIDocURL links to the model's API documentation.
	APIDocURL string `json:"api_doc_url"`
	// InputModalities are the kinds of input the record lists ("text",
	// "image", "file", ...), lower case, when it lists them: from
	// input_modalities, modalities ({"input":[...]}, a list or a string) or
	// architecture.input_modalities / architecture.modality
	// ("text+image->text"). Nil when the record is silent.
	InputModalities []string `json:"input_modalities,omitempty"`
}

// Pricing is a model's price. Input and Output are USD per million tokens.
type Pricing struct {
	// Currency is the catalog's currency/unit label, e.g. "USD / M Tokens".
	Currency string `json:"currency"`
	// Input is the price of a million input tokens.
	Input float64 `json:"input"`
	// Output is the price of a million output tokens.
	Output float64 `json:"output"`
	// PerRequest is a flat price per request, when the model is priced so.
	PerRequest *float64 `json:"per_request"`
	// PerSecond is a price per second (video/audio models), when priced so.
	PerSecond *float64 `json:"per_second"`
}

// IsText reports whether the model is a text (chat) model. A record without a
// type is assumed to be text.
func (m ModelInfo) IsText() bool {
	t := strings.ToLower(strings.TrimSpace(m.Type))
	return t == "" || t == "text" || t == "chat" || t == "llm"
}

// Cost returns the price in USD of one reply with usage u: input tokens ×
// input price + output tokens × output price (per million), plus the flat
// per-request price when there is one. Per-second prices are not included.
func (m ModelInfo) Cost(u Usage) float64 { return m.Pricing.Cost(u) }

// Cost returns the price in USD of one reply with usage u (see ModelInfo.Cost).
func (p Pricing) Cost(u Usage) float64 {
	c := float64(u.InputTokens)*p.Input/1e6 + float64(u.OutputTokens)*p.Output/1e6
	if p.PerRequest != nil {
		c += *p.PerRequest
	}
	return c
}

// Known reports whether the price says anything: a token price above zero or
// a per-request price. A record without prices (or with both token prices at
// zero and no per-request price) cannot price a reply, so spending limits
// must not treat it as free.
func (p Pricing) Known() bool {
	return p.Input > 0 || p.Output > 0 || p.PerRequest != nil
}

// UnmarshalJSON decodes a catalog record, tolerating numbers sent as strings,
// nulls, a features value that is a single string, and unknown fields.
func (m *ModelInfo) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID              string          `json:"id"`
		Provider        string          `json:"provider"`
		Type            string          `json:"model_type"`
		Features        json.RawMessage `json:"features"`
		Pricing         json.RawMessage `json:"pricing"`
		APIDocURL       string          `json:"api_doc_url"`
		InputModalities json.RawMessage `json:"input_modalities"`
		Modalities      json.RawMessage `json:"modalities"`
		Architecture    json.RawMessage `json:"architecture"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = ModelInfo{ID: strings.TrimSpace(raw.ID), Provider: raw.Provider, Type: raw.Type, APIDocURL: raw.APIDocURL}
	var arch struct {
		InputModalities json.RawMessage `json:"input_modalities"`
		Modality        json.RawMessage `json:"modality"`
	}
	if len(raw.Architecture) > 0 && raw.Architecture[0] == '{' {
		_ = json.Unmarshal(raw.Architecture, &arch) // tolerate garbage: silent
	}
	for _, r := range []json.RawMessage{raw.InputModalities, arch.InputModalities, raw.Modalities, arch.Modality} {
		if ms := parseModalities(r); ms != nil {
			m.InputModalities = ms
			break
		}
	}
	if len(raw.Features) > 0 && string(raw.Features) != "null" {
		if json.Unmarshal(raw.Features, &m.Features) != nil {
			var s string
			if json.Unmarshal(raw.Features, &s) == nil && s != "" {
				for f := range strings.SplitSeq(s, ",") {
					if f = strings.TrimSpace(f); f != "" {
						m.Features = append(m.Features, f)
					}
				}
			}
		}
	}
	if len(raw.Pricing) > 0 && string(raw.Pricing) != "null" {
		var p struct {
			Currency   string    `json:"currency"`
			Input      flexFloat `json:"input"`
			Output     flexFloat `json:"output"`
			PerRequest flexFloat `json:"per_request"`
			PerSecond  flexFloat `json:"per_second"`
		}
		if json.Unmarshal(raw.Pricing, &p) == nil {
			m.Pricing.Currency = p.Currency
			if p.Input.v != nil {
				m.Pricing.Input = *p.Input.v
			}
			if p.Output.v != nil {
				m.Pricing.Output = *p.Output.v
			}
			m.Pricing.PerRequest = p.PerRequest.v
			m.Pricing.PerSecond = p.PerSecond.v
		}
	}
	return nil
}

// parseModalities reads a list of input modalities: ["text","image"],
// {"input":["text","image"],"output":[...]}, "text,image" or
// "text+image->text" (inputs before the arrow). It returns nil when raw says
// nothing usable.
func parseModalities(raw json.RawMessage) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var list []string
	switch raw[0] {
	case '[':
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
	case '{':
		var obj struct {
			Input json.RawMessage `json:"input"`
		}
		if json.Unmarshal(raw, &obj) != nil || len(obj.Input) == 0 || obj.Input[0] == '{' {
			return nil
		}
		return parseModalities(obj.Input)
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		s, _, _ = strings.Cut(s, "->")
		list = strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ',' || r == '|' || r == '/' || r == ' ' })
	default:
		return nil
	}
	var out []string
	for _, x := range list {
		if x = strings.ToLower(strings.TrimSpace(x)); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// flexFloat accepts a JSON number, a numeric string, or null.
type flexFloat struct{ v *float64 }

func (f *flexFloat) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil // tolerate garbage: unknown price
	}
	f.v = &v
	return nil
}

// CatalogCache persists the last good catalog document so the bot starts
// (and lists models) while the catalog endpoint is down. The storage package
// implements it on bbolt; FileCache is a file-based implementation.
type CatalogCache interface {
	// LoadCatalog returns the saved document; (nil, nil) or an error
	// satisfying errors.Is(err, fs.ErrNotExist) when there is none.
	LoadCatalog(ctx context.Context) ([]byte, error)
	// SaveCatalog replaces the saved document.
	SaveCatalog(ctx context.Context, data []byte) error
}

// FileCache returns a CatalogCache that keeps the document in one file,
// replaced atomically (write to a temporary file, then rename).
func FileCache(path string) CatalogCache { return fileCache(path) }

type fileCache string

func (f fileCache) LoadCatalog(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("llm: catalog cache: %w", err)
	}
	return b, nil
}

func (f fileCache) SaveCatalog(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(string(f))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("llm: catalog cache: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".catalog-*.tmp")
	if err != nil {
		return fmt.Errorf("llm: catalog cache: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("llm: catalog cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), string(f)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("llm: catalog cache: %w", err)
	}
	return nil
}

// CatalogConfig configures a Catalog.
type CatalogConfig struct {
	// URL is the catalog endpoint, default DefaultCatalogURL (see CatalogURLFor).
	URL string
	// HTTPClient fetches the catalog; nil means a client with a 30s timeout.
	HTTPClient *http.Client
	// Refresh is the background refresh interval used by Run, default 1h.
	Refresh time.Duration
	// Cache, optional, persists the last good document.
	Cache CatalogCache
	// Logger receives refresh failures; nil discards them.
	Logger *slog.Logger
}

// Catalog is the gateway's model list, kept in memory and refreshed in the
// background by Run. All methods are safe for concurrent use; before the
// first successful load every lookup misses and lists are empty.
type Catalog struct {
	url     string
	hc      *http.Client
	refresh time.Duration
	cache   CatalogCache
	log     *slog.Logger

	mu        sync.RWMutex
	idx       *catalogIndex
	fetchedAt time.Time
	lastErr   error
	// last holds the last known price of models that an earlier catalog
	// (a cached copy or an earlier fetch) priced and the current one lacks
	// or lists without a price, keyed by lower-case id. It is saved with
	// the cached copy, so it survives restarts.
	last map[string]Pricing
}

// catalogIndex is an immutable snapshot; a refresh swaps in a new one.
type catalogIndex struct {
	models []ModelInfo    // sorted by id
	lower  []string       // lower-case ids, parallel to models
	byID   map[string]int // lower-case id -> index
	text   []int          // indexes of text models
	prov   []string       // lower-case providers, parallel to models
	caps   []string       // lower-case feature tags and capability words, parallel to models
}

// NewCatalog returns an empty Catalog; call Run (or Load and Refresh) to fill it.
func NewCatalog(cfg CatalogConfig) *Catalog {
	c := &Catalog{url: cfg.URL, hc: cfg.HTTPClient, refresh: cfg.Refresh, cache: cfg.Cache, log: cfg.Logger}
	if c.url == "" {
		c.url = DefaultCatalogURL
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if c.refresh <= 0 {
		c.refresh = DefaultCatalogRefresh
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// ParseCatalog decodes a catalog document ({"success":true,"data":[...]}, or
// a bare array of records). Records without an id are skipped. An error says
// what is wrong with the document's shape.
func ParseCatalog(data []byte) ([]ModelInfo, error) {
	ms, problem, err := parseCatalog(data)
	if problem != "" {
		return nil, &catalogShapeError{problem: problem, err: err}
	}
	return ms, nil
}

// catalogShapeError is a catalog document that is not a model list.
type catalogShapeError struct {
	problem string
	err     error
}

func (e *catalogShapeError) Error() string { return "llm: catalog: " + e.problem }
func (e *catalogShapeError) Unwrap() error { return e.err }

// parseCatalog decodes a catalog document; problem describes, for a person,
// why it is not a model list.
func parseCatalog(data []byte) (ms []ModelInfo, problem string, err error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, "the document is empty", nil
	}
	list := data
	switch data[0] {
	case '[':
	case '{':
		var doc struct {
			Success *bool           `json:"success"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, "the document is not valid JSON", err
		}
		if doc.Success != nil && !*doc.Success {
			return nil, fmt.Sprintf("the document says success=false (%q)", truncate(doc.Message, 200)), nil
		}
		if len(doc.Data) == 0 || string(doc.Data) == "null" {
			return nil, `the JSON object has no "data" list of models`, nil
		}
		if doc.Data[0] != '[' {
			return nil, `"data" is ` + jsonKind(doc.Data) + `, not a list of models`, nil
		}
		list = doc.Data
	default:
		if json.Valid(data) {
			return nil, "the document is " + jsonKind(data) + ", not a model list", nil
		}
		return nil, "the document is not JSON", nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(list, &raws); err != nil {
		return nil, "the document is not valid JSON", err
	}
	ms = make([]ModelInfo, 0, len(raws))
	for _, r := range raws {
		if len(r) == 0 || r[0] != '{' {
			return nil, "the model list holds " + jsonKind(r) + ", not model records", nil
		}
		var m ModelInfo
		if err := json.Unmarshal(r, &m); err != nil {
			return nil, "a model record is malformed", err
		}
		if m.ID != "" {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return nil, "the model list is empty", nil
	}
	return ms, "", nil
}

// jsonKind names the kind of a JSON value, with its article: "a string".
func jsonKind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return prefixRunes(s, n) + "…"
}

// CatalogError is a failed catalog fetch. Its message says where (the URL,
// without user info or query), what happened (the HTTP status, an HTML page,
// a document that is not a model list, a connection failure) and the fix;
// UserMessage returns it as a sentence, e.g. "The model catalog at
// https://host/api/models answered HTTP 401 — check COMETAPI_CATALOG_URL."
type CatalogError struct {
	// URL is the catalog URL without user info, query or fragment.
	URL string
	// Status is the HTTP status, 0 when no HTTP answer came.
	Status int
	// Problem says what happened, e.g. "answered HTTP 401" or "answered an
	// HTML page, not the model list".
	Problem string
	err     error
}

// Error returns "llm: the model catalog at URL <problem> — check
// COMETAPI_CATALOG_URL".
func (e *CatalogError) Error() string { return "llm: " + e.sentence() }

// Unwrap returns the underlying cause (a network or JSON error), if any.
func (e *CatalogError) Unwrap() error { return e.err }

func (e *CatalogError) sentence() string {
	return "the model catalog at " + e.URL + " " + e.Problem + " — check COMETAPI_CATALOG_URL"
}

func (c *Catalog) fetchError(status int, problem string, err error) *CatalogError {
	return &CatalogError{URL: safeURL(c.url), Status: status, Problem: problem, err: err}
}

// lastPricesField is the field of a cached catalog document that keeps the
// last known prices of models the catalog no longer prices. The gateway's
// documents never carry it; ParseCatalog ignores it.
const lastPricesField = "cometbot_last_prices"

// cachedLastPrices returns the last known prices saved in a cached catalog
// document (nil when there are none).
func cachedLastPrices(doc []byte) map[string]Pricing {
	var d struct {
		Last map[string]Pricing `json:"cometbot_last_prices"`
	}
	if doc = bytes.TrimSpace(doc); len(doc) == 0 || doc[0] != '{' || json.Unmarshal(doc, &d) != nil {
		return nil
	}
	return d.Last
}

// SetModels replaces the catalog's content (for tests and tools).
func (c *Catalog) SetModels(models []ModelInfo) {
	idx := buildIndex(models)
	c.mu.Lock()
	c.swapLocked(idx, nil)
	c.mu.Unlock()
}

// swapLocked installs idx as the current content. Prices the previous
// content (and saved, the cached copy's last known prices) had for models
// that idx lacks or lists unpriced are kept in c.last; models idx prices
// leave it.
func (c *Catalog) swapLocked(idx *catalogIndex, saved map[string]Pricing) {
	last := make(map[string]Pricing, len(c.last)+len(saved))
	for id, p := range saved {
		if p.Known() {
			last[strings.ToLower(id)] = p
		}
	}
	for id, p := range c.last {
		last[id] = p
	}
	if old := c.idx; old != nil {
		for i, m := range old.models {
			if m.Pricing.Known() {
				last[old.lower[i]] = m.Pricing
			}
		}
	}
	for id := range last {
		if i, ok := idx.byID[id]; ok && idx.models[i].Pricing.Known() {
			delete(last, id)
		}
	}
	c.idx, c.last = idx, last
	c.fetchedAt = time.Now()
}

// Price returns the price to charge a reply of model id with: the current
// catalog's, else the last known one — from an earlier fetch or the cached
// copy — when the current catalog lacks the model or lists it without a
// price. ok is false when no price was ever known.
func (c *Catalog) Price(id string) (p Pricing, ok bool) {
	l := strings.ToLower(strings.TrimSpace(id))
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.idx != nil {
		if i, found := c.idx.byID[l]; found && c.idx.models[i].Pricing.Known() {
			return c.idx.models[i].Pricing, true
		}
	}
	p, ok = c.last[l]
	return p, ok
}

// cacheDocument is what is saved in the cache after a fetch: the gateway's
// document as it came when no last known price needs keeping, else the
// models plus the last known prices.
func (c *Catalog) cacheDocument(raw []byte) []byte {
	c.mu.RLock()
	idx, last := c.idx, c.last
	c.mu.RUnlock()
	if len(last) == 0 || idx == nil {
		return raw
	}
	doc, err := json.Marshal(map[string]any{"success": true, "data": idx.models, lastPricesField: last})
	if err != nil {
		return raw
	}
	return doc
}

func buildIndex(models []ModelInfo) *catalogIndex {
	ms := append([]ModelInfo(nil), models...)
	sort.SliceStable(ms, func(i, j int) bool { return strings.ToLower(ms[i].ID) < strings.ToLower(ms[j].ID) })
	idx := &catalogIndex{byID: make(map[string]int, len(ms))}
	for _, m := range ms {
		l := strings.ToLower(m.ID)
		if _, dup := idx.byID[l]; dup {
			continue
		}
		idx.byID[l] = len(idx.models)
		if m.IsText() {
			idx.text = append(idx.text, len(idx.models))
		}
		idx.models = append(idx.models, m)
		idx.lower = append(idx.lower, l)
		idx.prov = append(idx.prov, strings.ToLower(m.Provider))
		idx.caps = append(idx.caps, capabilityWords(m))
	}
	return idx
}

func (c *Catalog) snapshot() *catalogIndex {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.idx
}

// Loaded reports whether the catalog holds models (fetched or from the cache).
func (c *Catalog) Loaded() bool { return c.snapshot() != nil }

// Len returns the number of models.
func (c *Catalog) Len() int {
	if idx := c.snapshot(); idx != nil {
		return len(idx.models)
	}
	return 0
}

// FetchedAt returns when the current content was loaded or fetched, and the
// last refresh error (nil when the last refresh succeeded).
func (c *Catalog) FetchedAt() (time.Time, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.fetchedAt, c.lastErr
}

// Load fills an empty catalog from the cache. It does nothing when the
// catalog is already loaded or there is no cache.
func (c *Catalog) Load(ctx context.Context) error {
	if c.cache == nil || c.Loaded() {
		return nil
	}
	b, err := c.cache.LoadCatalog(ctx)
	if err != nil {
		return fmt.Errorf("llm: catalog: load cache: %w", err)
	}
	if len(b) == 0 {
		return nil
	}
	ms, err := ParseCatalog(b)
	if err != nil {
		return fmt.Errorf("llm: catalog: cached copy: %w", err)
	}
	c.mu.Lock()
	if c.idx == nil {
		c.swapLocked(buildIndex(ms), cachedLastPrices(b))
	}
	c.mu.Unlock()
	return nil
}

// Refresh fetches the catalog now. On success it replaces the content and
// saves the document to the cache; on failure it keeps the previous content
// (loading the cached copy if the catalog was still empty) and returns the error.
func (c *Catalog) Refresh(ctx context.Context) error {
	err := c.fetch(ctx)
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
	if err != nil && !c.Loaded() {
		if lerr := c.Load(ctx); lerr != nil {
			c.log.Debug("llm: catalog cache unavailable", "err", lerr)
		}
	}
	return err
}

func (c *Catalog) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return c.fetchError(0, "is not a valid URL", nil)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.fetchError(0, "could not be reached ("+transportCause(err)+")", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return c.fetchError(resp.StatusCode, "answered, but the answer could not be read ("+transportCause(err)+")", err)
	}
	if resp.StatusCode != http.StatusOK {
		return c.fetchError(resp.StatusCode, "answered HTTP "+strconv.Itoa(resp.StatusCode), nil)
	}
	if isHTML(resp.Header.Get("Content-Type"), bytes.TrimSpace(b)) {
		return c.fetchError(resp.StatusCode, "answered an HTML page, not the model list", nil)
	}
	ms, problem, err := parseCatalog(b)
	if problem != "" {
		return c.fetchError(resp.StatusCode, "answered something that is not a model list: "+problem, err)
	}
	idx := buildIndex(ms)
	c.mu.Lock()
	c.swapLocked(idx, nil)
	c.mu.Unlock()
	if c.cache != nil {
		if err := c.cache.SaveCatalog(ctx, c.cacheDocument(b)); err != nil {
			c.log.Warn("llm: catalog: save cache", "err", err)
		}
	}
	return nil
}

// Run loads the cached copy, fetches the catalog, and then refreshes it every
// Refresh interval (failures are retried sooner, from 30s doubling up to the
// interval) until ctx ends. It returns ctx's error.
func (c *Catalog) Run(ctx context.Context) error {
	if err := c.Load(ctx); err != nil {
		c.log.Info("llm: catalog: no cached copy", "err", err)
	}
	retry := 30 * time.Second
	for {
		wait := c.refresh
		if err := c.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.log.Warn("llm: catalog refresh failed; keeping the last good copy", "err", err, "loaded", c.Loaded())
			wait = min(retry, c.refresh)
			retry = min(2*retry, c.refresh)
		} else {
			retry = 30 * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Lookup returns the model with this id, matched case-insensitively.
func (c *Catalog) Lookup(id string) (ModelInfo, bool) {
	idx := c.snapshot()
	if idx == nil {
		return ModelInfo{}, false
	}
	i, ok := idx.byID[strings.ToLower(strings.TrimSpace(id))]
	if !ok {
		return ModelInfo{}, false
	}
	return idx.models[i], true
}

// Models returns every model, sorted by id.
func (c *Catalog) Models() []ModelInfo {
	idx := c.snapshot()
	if idx == nil {
		return nil
	}
	return append([]ModelInfo(nil), idx.models...)
}

// TextModels returns the text models, sorted by id.
func (c *Catalog) TextModels() []ModelInfo {
	idx := c.snapshot()
	if idx == nil {
		return nil
	}
	out := make([]ModelInfo, len(idx.text))
	for i, j := range idx.text {
		out[i] = idx.models[j]
	}
	return out
}

// Search returns up to limit text models matching query, best first. Matching
// is case-insensitive: exact id, then id prefix, then substring (earlier is
// better), then all query words found in the id, the provider, the feature
// tags or the capability words ("vision" and "image" for models that take
// images, "file", "pdf" and "document" for models that take files: see
// ModelInfo.Accepts), then a fuzzy subsequence match of the id. Ties go to
// the shorter id. An empty query lists text models by id. limit <= 0 means
// no limit.
func (c *Catalog) Search(query string, limit int) []ModelInfo {
	idx := c.snapshot()
	if idx == nil {
		return nil
	}
	q := strings.ToLower(strings.TrimSpace(query))
	if limit <= 0 {
		limit = len(idx.text)
	}
	if q == "" {
		n := min(limit, len(idx.text))
		out := make([]ModelInfo, n)
		for i := range n {
			out[i] = idx.models[idx.text[i]]
		}
		return out
	}
	words := strings.Fields(q)
	compact := strings.ReplaceAll(q, " ", "")
	type hit struct{ i, score int }
	hits := make([]hit, 0, 16)
	for _, i := range idx.text {
		if s, ok := matchScore(idx.lower[i], idx.prov[i], idx.caps[i], q, compact, words); ok {
			hits = append(hits, hit{i, s})
		}
	}
	sort.Slice(hits, func(a, b int) bool {
		ha, hb := hits[a], hits[b]
		if ha.score != hb.score {
			return ha.score < hb.score
		}
		if la, lb := len(idx.lower[ha.i]), len(idx.lower[hb.i]); la != lb {
			return la < lb
		}
		return idx.lower[ha.i] < idx.lower[hb.i]
	})
	n := min(limit, len(hits))
	out := make([]ModelInfo, n)
	for k := range n {
		out[k] = idx.models[hits[k].i]
	}
	return out
}

// matchScore ranks id against query q (lower case); lower is better.
func matchScore(id, prov, caps, q, compact string, words []string) (int, bool) {
	switch {
	case id == q:
		return 0, true
	case strings.HasPrefix(id, q):
		return 1, true
	}
	if p := strings.Index(id, q); p >= 0 {
		return 100 + p, true
	}
	if len(words) > 1 || prov != "" || caps != "" {
		all := true
		for _, w := range words {
			if !strings.Contains(id, w) && !strings.Contains(prov, w) && !strings.Contains(caps, w) {
				all = false
				break
			}
		}
		if all {
			return 1000, true
		}
	}
	if gaps, ok := subsequence(id, compact); ok {
		return 2000 + gaps, true
	}
	return 0, false
}

// subsequence reports whether every byte of q appears in s in order, and
// how many bytes of s were skipped between the first and last match.
func subsequence(s, q string) (int, bool) {
	if q == "" {
		return 0, false
	}
	j, first, gaps := 0, -1, 0
	for i := 0; i < len(s) && j < len(q); i++ {
		if s[i] == q[j] {
			if first < 0 {
				first = i
			}
			j++
		} else if first >= 0 {
			gaps++
		}
	}
	return gaps, j == len(q)
}

// Suggest returns up to n model ids close to id ("did you mean"), nearest
// first: text models whose id contains id or is within an edit distance of
// about a third of its length.
func (c *Catalog) Suggest(id string, n int) []string {
	idx := c.snapshot()
	if idx == nil || n <= 0 {
		return nil
	}
	q := strings.ToLower(strings.TrimSpace(id))
	if q == "" {
		return nil
	}
	maxDist := max(2, len(q)/3)
	type hit struct {
		i, d int
	}
	var hits []hit
	rows := make([]int, 2*(64+1))
	for _, i := range idx.text {
		s := idx.lower[i]
		if s == q {
			continue
		}
		var d int
		switch {
		case strings.Contains(s, q) || strings.Contains(q, s):
			d = abs(len(s)-len(q)) / 4
		default:
			if need := 2 * (len(s) + 1); len(rows) < need {
				rows = make([]int, need)
			}
			d = levenshtein(q, s, maxDist+1, rows)
			if d > maxDist {
				continue
			}
		}
		hits = append(hits, hit{i, d})
	}
	sort.Slice(hits, func(a, b int) bool {
		if hits[a].d != hits[b].d {
			return hits[a].d < hits[b].d
		}
		return idx.lower[hits[a].i] < idx.lower[hits[b].i]
	})
	out := make([]string, 0, min(n, len(hits)))
	for _, h := range hits {
		if len(out) == n {
			break
		}
		out = append(out, idx.models[h.i].ID)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// levenshtein returns the edit distance of a and b, or limit when it is at
// least limit (it stops early). rows is scratch space of at least
// 2*(len(b)+1) ints.
func levenshtein(a, b string, limit int, rows []int) int {
	if abs(len(a)-len(b)) >= limit {
		return limit
	}
	prev := rows[:len(b)+1]
	cur := rows[len(b)+1 : 2*(len(b)+1)]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

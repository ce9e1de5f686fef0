package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/storage"
)

// Operator commands on the database: backup, restore, export, compact; the
// running bot's backup endpoint and its data janitor.
//
// A running bot holds an exclusive lock on COMETBOT_DB, so no other process
// can read the file. `cometbot backup` therefore copies the file itself when
// no bot runs, and otherwise asks the running bot, which streams a
// consistent snapshot (one read transaction) from POST /admin/backup on its
// HTTP server (COMETBOT_HTTP_ADDR). That endpoint needs the bearer token
// COMETBOT_ADMIN_TOKEN when it is set; without one it serves only
// connections from, and addressed to, the loopback interface.

// adminTokenEnv names the token that guards the admin endpoints.
const adminTokenEnv = "COMETBOT_ADMIN_TOKEN"

// backupPath is the running bot's backup endpoint.
const backupPath = "/admin/backup"

// backupWriteTimeout bounds streaming one backup (the server's usual write
// timeout is for short responses).
const backupWriteTimeout = time.Hour

// backupHandler serves POST /admin/backup: the database as of one read
// transaction, streamed.
func backupHandler(st *storage.Store, token string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !adminAllowed(r, token) {
			http.Error(w, "forbidden: set "+adminTokenEnv+" and send it as a bearer token, or connect through loopback", http.StatusForbidden)
			return
		}
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupWriteTimeout))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Cometbot-Backup-Size", fmt.Sprint(st.BackupSize()))
		start := time.Now()
		n, err := st.Backup(r.Context(), w)
		if err != nil {
			// The status line is gone: the client sees a short stream and a
			// file that does not verify.
			log.Error("backup failed", "err", err, "bytes", n)
			return
		}
		log.Info("backup served", "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	})
}

// adminAllowed reports whether r may use an admin endpoint: with a token,
// it must carry it; without one, it must come from loopback and be
// addressed to a loopback host (a web page that rebinds a domain name to
// 127.0.0.1 sends its own Host).
func adminAllowed(r *http.Request, token string) bool {
	if token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
	}
	return isLoopback(r.RemoteAddr) && isLoopback(r.Host)
}

// isLoopback reports whether hostport (or a bare host) names loopback.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// loopbackURL returns the URL of path on the bot's HTTP server at addr
// (COMETBOT_HTTP_ADDR), through loopback when it listens on every interface.
func loopbackURL(addr, path string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + path
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

// cmdBackup writes a consistent copy of the database to the file in args.
func cmdBackup(ctx context.Context, getenv func(string) string, args []string, stdout io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return usageErr(errors.New("usage: cometbot backup FILE"))
	}
	dst := args[0]
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if abs(dst) == abs(cfg.DBPath) {
		return usageErr(fmt.Errorf("backup: %s is the database itself", dst))
	}
	n, err := storage.BackupFile(cfg.DBPath, dst)
	how := "copied (no bot running)"
	if errors.Is(err, storage.ErrLocked) {
		how = "streamed by the running bot"
		n, err = backupFromBot(ctx, loopbackURL(cfg.HTTPAddr, backupPath), getenv(adminTokenEnv), dst)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := storage.VerifyFile(dst); err != nil {
		return fmt.Errorf("backup: the copy does not verify: %w", err)
	}
	fmt.Fprintf(stdout, "backup of %s written to %s: %s, %s, verified\n", cfg.DBPath, dst, sizeText(n), how)
	return nil
}

// backupFromBot asks the running bot at url for a backup and writes it to
// dst (through a temporary file, renamed when complete).
func backupFromBot(ctx context.Context, url, token, dst string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the database is locked by a running bot, and asking it failed (is COMETBOT_HTTP_ADDR the bot's?): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("the running bot refused: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	tmp := dst + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return n, fmt.Errorf("receiving the backup: %w", err)
	}
	return n, nil
}

// cmdRestore replaces the database with a backup (the bot stopped).
func cmdRestore(getenv func(string) string, args []string, stdout io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return usageErr(errors.New("usage: cometbot restore FILE"))
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if abs(args[0]) == abs(cfg.DBPath) {
		return usageErr(fmt.Errorf("restore: %s is the database itself", args[0]))
	}
	_, statErr := os.Stat(cfg.DBPath)
	if err := storage.Restore(args[0], cfg.DBPath); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s from %s\n", cfg.DBPath, args[0])
	if statErr == nil {
		fmt.Fprintf(stdout, "the previous database is kept as %s.bak\n", cfg.DBPath)
	}
	return nil
}

// cmdExport prints what the database holds about one person as JSON.
func cmdExport(getenv func(string) string, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	user := fs.String("user", "", "platform user id")
	ws := fs.String("workspace", "", "platform/workspace, e.g. slack/T0123 (default: every workspace)")
	if err := fs.Parse(args); err != nil || *user == "" || fs.NArg() > 0 {
		return usageErr(errors.New("usage: cometbot export --user ID [--workspace PLATFORM/WORKSPACE]"))
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	st, err := storage.OpenReadOnly(cfg.DBPath)
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("export: %w\n  the running bot holds the database: export from a backup instead:\n  cometbot backup /tmp/cometbot-copy.db && COMETBOT_DB=/tmp/cometbot-copy.db cometbot export --user %s", err, *user)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer st.Close()
	ex, err := st.ExportUser(context.Background(), strings.TrimSuffix(*ws, "/"), *user)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(ex)
}

// cmdCompact rewrites the database without its free pages (the bot stopped).
func cmdCompact(getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	res, err := storage.Compact(cfg.DBPath)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	fmt.Fprintf(stdout, "compacted %s: %s -> %s\n", cfg.DBPath, sizeText(res.Before), sizeText(res.After))
	return nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// retention turns the YAML retention settings into the store's policy.
func retention(f *config.File) storage.Retention {
	day := 24 * time.Hour
	r := storage.Retention{Default: time.Duration(f.History.RetentionDays) * day}
	for id, ch := range f.Channels {
		if ch.RetentionDays != nil {
			if r.Channels == nil {
				r.Channels = map[string]time.Duration{}
			}
			r.Channels[id] = time.Duration(*ch.RetentionDays) * day
		}
	}
	return r
}

// janitorInterval is how often the data janitor runs; janitorFirst is its
// first run after start (out of the way of resuming unfinished replies).
const (
	janitorInterval = time.Hour
	janitorFirst    = time.Minute
)

// runJanitor deletes expired records and the generations /reset left
// behind, once soon after start and then every janitorInterval, until ctx
// ends (see storage.Store.Prune).
func runJanitor(ctx context.Context, st *storage.Store, r storage.Retention, log *slog.Logger) {
	t := time.NewTimer(janitorFirst)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		res, err := st.Prune(ctx, r)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("data janitor", "err", err)
		case res.Expired+res.OldGenerations > 0:
			log.Info("data janitor", "expired_records", res.Expired, "reset_records", res.OldGenerations,
				"transactions", res.Transactions, "took", time.Since(start).Round(time.Millisecond))
		}
		t.Reset(janitorInterval)
	}
}

package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// prefill puts a database with convs stored conversations (at least
// minBytes big) and a cached model catalog at dbPath. Built databases are
// kept in the user cache directory and copied, so only the first run pays
// for building one.
func prefill(ctx context.Context, dbPath string, convs int, minBytes int64, catalogURL string, logf func(string, ...any)) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o750); err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	cacheDir, err := os.UserCacheDir()
	if err != nil {
		cacheDir = os.TempDir()
	}
	cacheDir = filepath.Join(cacheDir, "cometbot-loadtest")
	if err := os.MkdirAll(cacheDir, 0o750); err != nil {
		return 0, fmt.Errorf("loadtest: cache dir: %w", err)
	}
	cached := filepath.Join(cacheDir, fmt.Sprintf("prefill-schema%d-%dconvs-%dMiB.db", storage.SchemaVersion, convs, minBytes>>20))
	if _, err := os.Stat(cached); err != nil {
		start := time.Now()
		tmp := cached + ".building"
		_ = os.Remove(tmp)
		if err := buildPrefill(ctx, tmp, convs, minBytes, catalogURL); err != nil {
			_ = os.Remove(tmp)
			return 0, err
		}
		if err := os.Rename(tmp, cached); err != nil {
			return 0, fmt.Errorf("loadtest: %w", err)
		}
		logf("built %s in %v", cached, time.Since(start).Round(time.Millisecond))
	}
	if err := copyFile(cached, dbPath); err != nil {
		return 0, err
	}
	fi, err := os.Stat(dbPath)
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	return fi.Size(), nil
}

func buildPrefill(ctx context.Context, path string, convs int, minBytes int64, catalogURL string) error {
	st, err := storage.Open(path, storage.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	cat := llm.NewCatalog(llm.CatalogConfig{URL: catalogURL, Cache: st})
	if err := cat.Refresh(ctx); err != nil {
		return fmt.Errorf("loadtest: catalog for the prefilled database: %w", err)
	}
	text := strings.Repeat("A stored message of a long conversation about storage engines. ", 24) // ~1.5 KB
	key := func(i int) string {
		return bot.Scope{Platform: "slack", Workspace: "T1", Channel: fmt.Sprintf("CPF%04d", i%1000), Thread: fmt.Sprintf("1600000000.%06d", i)}.ConversationKey()
	}
	for round := 0; round < 64; round++ {
		if round > 0 {
			fi, err := os.Stat(path)
			if err != nil {
				return fmt.Errorf("loadtest: %w", err)
			}
			if fi.Size() >= minBytes {
				return nil
			}
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			firstErr error
		)
		work := make(chan int)
		for range 16 {
			wg.Go(func() {
				for i := range work {
					now := time.Unix(1600000000+int64(i), 0)
					u := storage.Record{Role: "user", Text: text, Author: "UPF", AuthorName: "prefill", Time: now, Status: storage.StatusOK}
					a := storage.Record{Role: "assistant", Text: text, Model: "gpt-4o-mini", Time: now, Status: storage.StatusOK, InputTokens: 400, OutputTokens: 400}
					if err := st.AppendTurn(ctx, key(i), 0, u, a); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
				}
			})
		}
		for i := range convs {
			if ctx.Err() != nil {
				break
			}
			work <- i
		}
		close(work)
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if minBytes <= 0 {
			return nil
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("loadtest: copy database: %w", err)
	}
	// Write the copy back now: otherwise the bot's first fsync would flush
	// the whole file and count as start-up time.
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("loadtest: sync database copy: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	return nil
}

// evictFromPageCache asks the kernel to drop the file's cached pages, so the
// bot starts with the database on disk only (a cold start), without
// touching any other file's cache.
func evictFromPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("loadtest: fadvise: %w", err)
	}
	return nil
}

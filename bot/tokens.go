package bot

import (
	"unicode/utf8"

	"github.com/cometbot/cometbot/llm"
)

// EstimateTokens estimates how many tokens text costs. It is a documented
// estimate, not a tokenizer: ASCII text costs one token per four bytes
// (rounded up), the typical ratio of BPE tokenizers on English and code, and
// every non-ASCII rune (CJK, accents, emoji) costs one token. This errs on the
// high side for most languages, the safe side for a context budget.
func EstimateTokens(text string) int {
	ascii, other := 0, 0
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf {
			ascii++
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
		other++
	}
	return (ascii+3)/4 + other
}

// messageOverhead is the per-message framing cost (role, separators).
const messageOverhead = 4

// TrimToBudget keeps the newest messages whose estimated tokens, plus the
// system prompt's, fit budget. The newest message is always kept; the kept
// history starts with a user message so providers that require alternation
// accept it.
func TrimToBudget(system string, msgs []llm.Message, budget int) []llm.Message {
	if len(msgs) == 0 {
		return msgs
	}
	used := EstimateTokens(system) + messageOverhead
	start := len(msgs) - 1
	used += EstimateTokens(msgs[start].Content) + messageOverhead
	for i := len(msgs) - 2; i >= 0; i-- {
		n := EstimateTokens(msgs[i].Content) + messageOverhead
		if used+n > budget {
			break
		}
		used += n
		start = i
	}
	for start < len(msgs)-1 && msgs[start].Role != llm.RoleUser {
		start++
	}
	return msgs[start:]
}

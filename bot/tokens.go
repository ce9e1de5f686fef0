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
// accept it. Images and files count by the documented attachment estimates.
func TrimToBudget(system string, msgs []llm.Message, budget int) []llm.Message {
	return msgs[trimStart(system, msgs, budget, nil):]
}

// trimStart returns the index of the first message TrimToBudget keeps;
// extra(i), when set, adds tokens for message i's parts not yet loaded.
func trimStart(system string, msgs []llm.Message, budget int, extra func(int) int) int {
	if len(msgs) == 0 {
		return 0
	}
	cost := func(i int) int {
		n := EstimateTokens(msgs[i].Content) + messageOverhead + partTokens(msgs[i]) + toolTokens(msgs[i])
		if extra != nil {
			n += extra(i)
		}
		return n
	}
	used := EstimateTokens(system) + messageOverhead
	start := len(msgs) - 1
	used += cost(start)
	for i := len(msgs) - 2; i >= 0; i-- {
		n := cost(i)
		if used+n > budget {
			break
		}
		used += n
		start = i
	}
	for start < len(msgs)-1 && msgs[start].Role != llm.RoleUser {
		start++
	}
	return start
}

// toolTokens estimates a message's tool calls and results.
func toolTokens(m llm.Message) int {
	n := 0
	for _, c := range m.ToolCalls {
		n += messageOverhead + EstimateTokens(c.Name) + EstimateTokens(string(c.Arguments))
	}
	for _, r := range m.ToolResults {
		n += messageOverhead + EstimateTokens(r.Content)
	}
	return n
}

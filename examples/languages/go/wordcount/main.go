// wordcount.go: the word-count task in Go, with the Go SDK (sdk/go).
//
// Counts the words of input `text` and writes `word<TAB>count` lines sorted
// by word (byte order) to output `out`. A word is a maximal run of ASCII
// letters and digits; every other byte (including each byte of a non-ASCII
// character) separates words. Params: `lowercase` (bool, default true: ASCII
// letters are lowercased) and `min_len` (integer >= 0, default 1). On ASCII
// text the output is byte-identical to the stock `wordcount`.
package main

import (
	"io"
	"sort"
	"strconv"

	engine "engine.local/sdk"
)

type params struct {
	Lowercase bool `json:"lowercase"`
	MinLen    uint `json:"min_len"`
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func wordcount(ctx *engine.Context) error {
	p := params{Lowercase: true, MinLen: 1}
	if err := ctx.Params(&p); err != nil {
		return err
	}
	in, err := ctx.Input("text")
	if err != nil {
		return err
	}
	// Pointer values: a lookup with string(w) does not allocate, so only a
	// new word costs an allocation.
	counts := map[string]*uint64{}
	add := func(w []byte) {
		if uint(len(w)) < p.MinLen {
			return
		}
		if n := counts[string(w)]; n != nil {
			*n++
		} else {
			one := uint64(1)
			counts[string(w)] = &one
		}
	}
	buf := make([]byte, engine.Chunk)
	word := make([]byte, 0, 64)
	for {
		n, err := in.Read(buf)
		for _, c := range buf[:n] {
			if isAlnum(c) {
				if p.Lowercase && c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				word = append(word, c)
			} else if len(word) > 0 {
				add(word)
				word = word[:0]
			}
		}
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
	}
	if len(word) > 0 {
		add(word)
	}

	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Strings(words) // byte order
	out := ctx.Output("out")
	line := make([]byte, 0, 64)
	for _, w := range words {
		line = append(line[:0], w...)
		line = append(line, '\t')
		line = strconv.AppendUint(line, *counts[w], 10)
		line = append(line, '\n')
		if _, err := out.Write(line); err != nil {
			return err
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	engine.Log(engine.Info, "%d distinct words", len(words))
	return nil
}

func init() { engine.Task(wordcount) }

func main() {}

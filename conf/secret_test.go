package conf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const testSecret = "s3cr3t-token-value"

func TestSecretFormatting(t *testing.T) {
	sec := NewSecret(testSecret)
	var b strings.Builder
	fmt.Fprintf(&b, "%v %+v %#v %s %q %x %X %d %10s %T", sec, sec, sec, sec, sec, sec, sec, sec, sec, sec)
	fmt.Fprint(&b, sec, []Secret{sec}, map[string]Secret{"k": sec}, struct{ S Secret }{sec}, &sec)
	j, _ := json.Marshal(map[string]any{"s": sec, "p": &sec})
	b.Write(j)
	txt, _ := sec.MarshalText()
	b.Write(txt)
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "s", sec, "any", any(sec))
	b.WriteString(logs.String())
	if strings.Contains(b.String(), testSecret) {
		t.Errorf("leak: %s", b.String())
	}
	if sec.Reveal() != testSecret {
		t.Error("Reveal")
	}
}

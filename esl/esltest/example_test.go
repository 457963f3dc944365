package esltest_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/eslapp/eslapp/esl/esltest"
)

// A test points a fake FreeSWITCH at the application's listener, lets a
// call run, then checks what the application sent and what the caller
// heard.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := esltest.New(esltest.Options{})
	call, err := fs.Dial(ctx, "127.0.0.1:8084", esltest.CallOptions{
		Vars: map[string]string{"wfe_config_id": "demo-crm"},
		// hold.wav plays for 6 s, like the real file.
		Media: func(path string) (time.Duration, bool) {
			if strings.HasSuffix(path, "hold.wav") {
				return 6 * time.Second, true
			}
			return time.Second, true
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Wait until the application starts the prompt, then hang up.
	if _, err := call.WaitFor(ctx, func(c esltest.Command) bool { return c.App == "playback" }); err == nil {
		call.Hangup("NORMAL_CLEARING")
	}
	<-call.Done()
	fmt.Println(call.Outcome().Kind, call.APIExecutions(), len(call.Played()))
}

package testenv

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser starts headless Chromium with a fresh profile and a w×h viewport,
// and returns a chromedp context for it; it is closed when the test ends.
func Browser(t testing.TB, w, h int) context.Context {
	t.Helper()
	return startBrowser(t, browserOptions(t, w, h))
}

// browserOptions are Browser's: a fresh profile, a w×h window, nothing that
// reaches out on its own.
func browserOptions(t testing.TB, w, h int) []chromedp.ExecAllocatorOption {
	t.Helper()
	Need(t, "chromium")
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"),
		chromedp.NoSandbox, // we run as root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	)
}

// startBrowser starts Chromium with opts and connects to it.
func startBrowser(t testing.TB, opts []chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelC()
		cancelA()
	})
	// Start the browser now, so a broken install fails here with a clear
	// message. No timeout on this first call: it would stop the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// Screenshot captures the page's viewport as an image.
func Screenshot(ctx context.Context) (image.Image, error) {
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return nil, err
	}
	return png.Decode(bytes.NewReader(buf))
}

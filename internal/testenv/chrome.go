package testenv

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// Browser starts headless Chromium with a fresh profile and a w×h viewport,
// and returns a chromedp context for it; it is closed when the test ends.
func Browser(t testing.TB, w, h int) context.Context {
	t.Helper()
	return browser(t, "chromium", w, h)
}

// BrowserIn is Browser with Chromium running inside network namespace ns
// (a Net's viewers): it reaches only that namespace's addresses. chromedp
// drives it over its pipe, which crosses namespaces.
func BrowserIn(t testing.TB, ns string, w, h int) context.Context {
	t.Helper()
	Need(t, "chromium", "ip")
	wrapper := filepath.Join(t.TempDir(), "chromium-in-"+ns)
	script := "#!/bin/sh\nexec ip netns exec " + ns + " chromium \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return browser(t, wrapper, w, h)
}

func browser(t testing.TB, exe string, w, h int) context.Context {
	t.Helper()
	Need(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
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

package main

// A real headless Chromium signs in through the dev server's hosted pages,
// from the demo relying party back to it with an ID token, and (with
// OTPGATE_UPDATE_SCREENSHOTS=1) saves the screenshots under docs/screenshots
// that the README shows.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotDir is docs/screenshots, from this package's directory.
const screenshotDir = "../../docs/screenshots"

// The viewports of the screenshots: a current phone and a laptop.
var (
	viewportMobile  = chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)
	viewportDesktop = chromedp.EmulateViewport(1280, 800)
)

// findChromium returns the path of a Chromium or Chrome binary. Without one
// the test is skipped, except in CI, where the browser test must run.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const how = "no Chromium found in PATH (looked for chromium, chromium-browser, google-chrome); " +
		"install it with `apt-get install chromium` (Debian/Ubuntu) to run the browser test"
	if os.Getenv("CI") == "true" {
		t.Fatal(how)
	}
	t.Skip(how)
	return ""
}

// lockedBuffer collects the browser's output, written from its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newBrowser starts headless Chromium (execPath) with a fresh profile; it is
// stopped (and waited for) when the test ends. Every action on the returned
// context ends by the deadline of ctx.
func newBrowser(t *testing.T, ctx context.Context, execPath string) context.Context {
	t.Helper()
	output := &lockedBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no-first-run, disable-background-networking, disable-sync, disable-dev-shm-usage…
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // containers and CI runners as root have no user namespaces for it
		chromedp.DisableGPU,
		chromedp.Flag("headless", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", "en-US"), // the assertions read English pages
		chromedp.CombinedOutput(output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the process, before t.TempDir removes the profile
		if t.Failed() {
			t.Logf("Chromium output:\n%s", output)
		}
	})
	start := time.Now()
	if err := chromedp.Do(browserCtx); err != nil { // starts the browser
		t.Fatalf("start Chromium (%s): %v\n%s", execPath, err, output)
	}
	t.Logf("Chromium (%s) started in %v", execPath, time.Since(start).Round(time.Millisecond))
	return browserCtx
}

// pageText is the page's visible text, with no-break spaces as spaces.
func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatalf("read the page text: %v", err)
	}
	return strings.ReplaceAll(text, "\u00a0", " ")
}

// location is the URL the browser shows.
func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("read the location: %v", err)
	}
	return loc
}

// submit clicks sel and waits for the page the click leads to (after any
// redirects), returning its HTTP status.
func submit(t *testing.T, ctx context.Context, sel string) int64 {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("click %s: %v (at %s)", sel, err, loc)
	}
	return resp.Status
}

// checkLayout fails when the page is wider than the viewport: on a phone
// that is a sideways scroll.
func checkLayout(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= document.documentElement.clientWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if !fits {
		t.Errorf("%s: the page is wider than the viewport", name)
	}
}

// screenshots captures the current page at each viewport and ends on the
// mobile one. The PNGs are written to docs/screenshots/<name>-<viewport>.png
// only when OTPGATE_UPDATE_SCREENSHOTS=1, so that ordinary runs leave the tree
// clean; they are taken anyway so that this path cannot rot.
func screenshots(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	update := os.Getenv("OTPGATE_UPDATE_SCREENSHOTS") == "1"
	for _, v := range []struct {
		suffix   string
		viewport chromedp.Action[chromedp.Void]
	}{
		{"desktop", viewportDesktop},
		{"mobile", viewportMobile}, // last: the flow goes on as a phone
	} {
		if err := chromedp.Do(ctx, v.viewport); err != nil {
			t.Fatalf("viewport %s: %v", v.suffix, err)
		}
		checkLayout(t, ctx, name+"-"+v.suffix)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 is PNG; anything else is JPEG
		if err != nil {
			t.Fatalf("screenshot %s-%s: %v", name, v.suffix, err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot %s-%s is not a PNG", name, v.suffix)
		}
		if update {
			path := filepath.Join(screenshotDir, name+"-"+v.suffix+".png")
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", path, len(png))
		}
	}
}

// wrongCode returns a code of the same length that differs from code in
// every digit, so that it cannot be right by chance.
func wrongCode(code string) string {
	b := []byte(code)
	for i, c := range b {
		b[i] = '0' + (c-'0'+1)%10
	}
	return string(b)
}

func TestBrowserLogin(t *testing.T) {
	chromium := findChromium(t)
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second) // the whole test, browser included
	defer cancel()
	s := startDevServer(t)
	b := newBrowser(t, ctx, chromium)

	// The demo relying party, as a phone.
	if err := chromedp.Do(b, viewportMobile, chromedp.Navigate(s.Issuer+"/dev/demo")); err != nil {
		t.Fatalf("open /dev/demo: %v", err)
	}
	if status := submit(t, b, `a[href="/dev/demo/login"]`); status != 200 {
		t.Fatalf("the sign-in link led to HTTP %d at %s", status, location(t, b))
	}

	// Phone page.
	if loc := location(t, b); !strings.HasPrefix(loc, s.Issuer+"/login/phone?") {
		t.Fatalf("the sign-in link led to %s, want the phone page", loc)
	}
	if text := pageText(t, b); !strings.Contains(text, "Sign in with your phone") {
		t.Errorf("the phone page says:\n%s", text)
	}
	screenshots(t, b, "phone")
	if err := chromedp.Do(b, chromedp.SendKeys(chromedp.CSS(`input[name=phone]`), devPhone)); err != nil {
		t.Fatal(err)
	}
	if status := submit(t, b, `button[type=submit]`); status != 200 {
		t.Fatalf("the phone submission led to HTTP %d at %s:\n%s", status, location(t, b), pageText(t, b))
	}

	// Code page: the number is shown masked.
	if loc := location(t, b); !strings.HasPrefix(loc, s.Issuer+"/login/code?") {
		t.Fatalf("the phone submission led to %s, want the code page:\n%s", loc, pageText(t, b))
	}
	const masked = "+33 6 •• •• •• 78" // factors.MaskPhone(devE164); the page keeps it on one line
	text := pageText(t, b)
	if !strings.Contains(text, "We sent a code to "+masked) {
		t.Errorf("the code page does not show the masked number %q:\n%s", masked, text)
	}
	if strings.Contains(text, "12 34 56") || strings.Contains(text, "612345678") {
		t.Errorf("the code page shows the whole number:\n%s", text)
	}
	screenshots(t, b, "code")
	code := s.latestCode(t, devE164)

	// A wrong code: the same page with an error and the attempts left.
	if err := chromedp.Do(b, chromedp.SendKeys(chromedp.CSS(`input[name=code]`), wrongCode(code))); err != nil {
		t.Fatal(err)
	}
	if status := submit(t, b, `button.btn-primary[type=submit]`); status != 400 {
		t.Errorf("a wrong code answered HTTP %d, want 400", status)
	}
	alert, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(`[role=alert]`)))
	if err != nil {
		t.Fatalf("no error message after a wrong code: %v\n%s", err, pageText(t, b))
	}
	if !strings.Contains(alert, "Wrong code") || !strings.Contains(alert, "4 attempts left") {
		t.Errorf("the error after a wrong code says %q, want the wrong code and 4 attempts left", alert)
	}
	if invalid, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector("input[name=code]").getAttribute("aria-invalid")`)); invalid != "true" {
		t.Errorf("the code field is not marked aria-invalid after a wrong code")
	}
	screenshots(t, b, "code-error")

	// The right code: back to the demo, which shows the ID token's claims.
	if _, err := chromedp.Run(b, chromedp.Evaluate[bool](`(document.querySelector("input[name=code]").value = "") === ""`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, chromedp.SendKeys(chromedp.CSS(`input[name=code]`), code)); err != nil {
		t.Fatal(err)
	}
	if status := submit(t, b, `button.btn-primary[type=submit]`); status != 200 {
		t.Fatalf("the right code led to HTTP %d at %s:\n%s", status, location(t, b), pageText(t, b))
	}
	if loc := location(t, b); !strings.HasPrefix(loc, s.Issuer+"/dev/demo/callback?") {
		t.Errorf("the right code led to %s, want the demo's callback", loc)
	}
	text = pageText(t, b)
	for _, want := range []string{"phone_number_verified", devE164, `"sms"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo page does not show %s:\n%s", want, text)
		}
	}
	// The claims block is the ID token's, not the UserInfo one.
	raw, err := chromedp.Run(b, chromedp.Evaluate[string](
		`[...document.querySelectorAll("h2")].find(h => h.textContent === "ID token claims").nextElementSibling.textContent`))
	if err != nil {
		t.Fatalf("no ID token claims on the demo page: %v\n%s", err, text)
	}
	var claims struct {
		Iss                 string   `json:"iss"`
		Aud                 any      `json:"aud"`
		Sub                 string   `json:"sub"`
		PhoneNumber         string   `json:"phone_number"`
		PhoneNumberVerified bool     `json:"phone_number_verified"`
		AMR                 []string `json:"amr"`
	}
	if err := json.Unmarshal([]byte(raw), &claims); err != nil {
		t.Fatalf("the ID token claims are not JSON: %v\n%s", err, raw)
	}
	if claims.Iss != s.Issuer || claims.PhoneNumber != devE164 || !claims.PhoneNumberVerified ||
		len(claims.AMR) != 1 || claims.AMR[0] != "sms" || claims.Sub == "" || strings.Contains(claims.Sub, "612345678") {
		t.Errorf("ID token claims: %+v", claims)
	}
	screenshots(t, b, "demo")
	t.Logf("whole login in a browser: %v", time.Since(started).Round(time.Millisecond))
}

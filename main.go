// Deskcast shares this computer's screen with any browser on the local network.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/deskcast/deskcast/access"
	"github.com/deskcast/deskcast/capture"
	"github.com/deskcast/deskcast/capture/audio"
	"github.com/deskcast/deskcast/engine"
	"github.com/deskcast/deskcast/version"
	"github.com/deskcast/deskcast/web"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("deskcast", flag.ContinueOnError)
	fl.SetOutput(stderr)
	s := engine.Defaults()
	var (
		list     = fl.Bool("list", false, "list monitors and audio inputs, and exit")
		sound    = fl.String("audio", audio.None, "sound to share: an input's name or number from --list, \"default\" or \"none\"")
		mode     = fl.String("mode", string(access.ModeScreenAudio), "what to share: screen+audio, screen or audio")
		headless = fl.Bool("headless", false, "run without a window: print the viewer URLs and serve until Ctrl-C")
		monitor  = fl.Int("monitor", 1, "monitor to share, as --list numbers them")
		region   = fl.String("region", "", "share only this part of the monitor: x,y,w,h in pixels")
		verbose  = fl.Bool("v", false, "log more")
		start    = fl.Bool("start", false, "start sharing at launch (the app otherwise waits for Start sharing)")
	)
	fl.StringVar(&s.Listen, "listen", fmt.Sprintf(":%d", web.DefaultPort), "address to listen on; the next free port is used when it is busy.\n"+
		"A firewall must allow TCP (page, MJPEG, sound, and WebRTC over TCP) and UDP (WebRTC video) on that port")
	fl.StringVar(&s.Token, "token", "", "fixed share token (16-128 letters, digits, - or _); default: a fresh random one")
	fl.IntVar(&s.FPS, "fps", s.FPS, "frames per second, 1-120")
	fl.IntVar(&s.Quality, "quality", s.Quality, "JPEG quality, 1-100")
	fl.IntVar(&s.MaxWidth, "max-width", 0, "downscale frames wider than this, e.g. 1280 (0: full size)")
	fl.StringVar(&s.Access.PIN, "pin", "", "ask viewers for this PIN (4-12 digits) before they watch; it is never in the link or QR code")
	fl.Var(approveFlag{&s.Access.Approve}, "approve", "make each new viewer wait for the presenter: --approve (ask; denied when\n"+
		"nobody answers in time) or --approve=auto (let in when nobody answers in time)")
	fl.DurationVar(&s.Access.ApproveTimeout, "approve-timeout", 30*time.Second, "how long a new viewer waits for an answer")
	fl.Var(controlFlag{&s.Control}, "control", "let viewers drive this desktop's mouse and keyboard: --control (only the viewer\n"+
		"you grant it to, from the viewer list or /api/viewers) or --control=all (every viewer let in)")
	fl.Var(pointerFlag{&s.Pointer}, "pointer", "show viewers this desktop's mouse pointer: on, off, or highlight (on, with a soft\n"+
		"ring around it on the viewer page, for presentations)")
	fl.IntVar(&s.Access.MaxViewers, "max-viewers", access.DefaultMaxViewers, "most viewers at once (-1: no limit)")
	fl.StringVar(&s.Publish.URL, "publish", "", "also publish the share to a media server: its WHIP endpoint, e.g.\n"+
		"http://host:8889/deskcast/whip (MediaMTX). Its own rules decide who watches there")
	fl.StringVar(&s.Publish.Token, "publish-token", "", "the media server's token, sent as \"Authorization: Bearer\"\n"+
		"(default: $DESKCAST_PUBLISH_TOKEN, which other users cannot read in the process list)")
	fl.StringVar(&s.Publish.View, "publish-view", "", "where the media server's viewers watch, to show next to the publishing state")
	printVersion := fl.Bool("version", false, "print the version and commit, and exit")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if s.Publish.Token == "" {
		s.Publish.Token = os.Getenv("DESKCAST_PUBLISH_TOKEN") // read after parsing: --help never shows it
	}
	// For automation and tests: the Wayland portal's permission to start
	// without its dialog (see docs/testing.md); the app stores its own.
	s.PortalToken = os.Getenv("DESKCAST_PORTAL_RESTORE_TOKEN")
	if *printVersion {
		fmt.Fprintln(stdout, "deskcast", version.String())
		return 0
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	if *list {
		ms, err := capture.Monitors()
		if err != nil {
			fmt.Fprintln(stderr, "deskcast:", err)
			return 1
		}
		fmt.Fprintln(stdout, "Monitors (--monitor N):")
		for _, m := range ms {
			fmt.Fprintf(stdout, "  %s at %d,%d\n", m, m.Bounds.Min.X, m.Bounds.Min.Y)
		}
		ds, err := audio.Devices()
		if err != nil {
			fmt.Fprintln(stderr, "deskcast:", err)
			return 1
		}
		fmt.Fprintln(stdout, "Audio inputs (--audio N or name):")
		for i, d := range ds {
			tags := ""
			if d.Monitor {
				tags += " [loopback: what this computer plays]"
			}
			if d.Default {
				tags += " [default]"
			}
			fmt.Fprintf(stdout, "  %d: %s%s\n", i+1, d.Name, tags)
		}
		return 0
	}
	m, err := access.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(stderr, "deskcast:", err)
		return 2
	}
	s.Mode = m
	if s.Audio, err = audio.Resolve(*sound); err != nil {
		fmt.Fprintln(stderr, "deskcast:", err)
		return 2
	}
	s.Monitor = *monitor - 1
	if *region != "" {
		r, err := capture.ParseRegion(*region)
		if err != nil {
			fmt.Fprintln(stderr, "deskcast:", err)
			return 2
		}
		s.Region = r
	}
	e, err := engine.New(s, log)
	if err != nil {
		fmt.Fprintln(stderr, "deskcast:", err)
		return 2
	}
	if !*headless && !guiAvailable() {
		fmt.Fprintln(stderr, "deskcast: no display for a window; running headless (use --headless to say so)")
		*headless = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *headless {
		err = e.RunHeadless(ctx, stdout)
	} else {
		given := map[string]bool{}
		fl.Visit(func(f *flag.Flag) { given[f.Name] = true })
		err = runGUI(ctx, e, *start, given)
	}
	if err != nil {
		fmt.Fprintln(stderr, "deskcast:", err)
		return 1
	}
	return 0
}

// approveFlag is --approve: bare, it means ask.
type approveFlag struct{ a *access.Approval }

func (f approveFlag) IsBoolFlag() bool { return true }
func (f approveFlag) String() string {
	if f.a == nil || *f.a == access.ApproveOff {
		return "off"
	}
	return string(*f.a)
}
func (f approveFlag) Set(v string) error {
	a, err := access.ParseApproval(v)
	if err == nil {
		*f.a = a
	}
	return err
}

// controlFlag is --control: bare, it means on (for granted viewers).
type controlFlag struct{ m *access.ControlMode }

func (f controlFlag) IsBoolFlag() bool { return true }
func (f controlFlag) String() string {
	if f.m == nil || *f.m == access.ControlOff {
		return "off"
	}
	return string(*f.m)
}
func (f controlFlag) Set(v string) error {
	m, err := access.ParseControlMode(v)
	if err == nil {
		*f.m = m
	}
	return err
}

// pointerFlag is --pointer: on, off or highlight.
type pointerFlag struct{ m *web.PointerMode }

func (f pointerFlag) String() string {
	if f.m == nil || *f.m == "" {
		return string(web.PointerOn)
	}
	return string(*f.m)
}
func (f pointerFlag) Set(v string) error {
	m, err := web.ParsePointerMode(v)
	if err == nil {
		*f.m = m
	}
	return err
}

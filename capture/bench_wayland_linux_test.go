package capture

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deskcast/deskcast/internal/testenv"
)

// BenchmarkCapturePaths1080p compares the Wayland path (portal and PipeWire,
// on headless mutter) with the X11 path (XShm and XDamage, on Xvfb), with
// the same full-screen GTK window as the client on both:
//   - ms/change: a repaint of the window to its picture out of Run (median
//     of 20; GTK's own drawing is in it on both paths);
//   - fps: pictures out of Run while the window repaints 60 times a second,
//     at a 30 fps setting;
//   - cpu%: Deskcast's CPU (this process: Run, its copies and compares) over
//     those 5 s, in % of one core; server-cpu%: the display server's (mutter
//     renders and copies the frames for the portal; Xvfb only draws).
func BenchmarkCapturePaths1080p(b *testing.B) {
	for _, path := range []string{"x11", "wayland"} {
		b.Run(path, func(b *testing.B) {
			var (
				win    *testenv.WaylandWindow
				cfg    = ScreenConfig{FPS: 30}
				server int
			)
			if path == "x11" {
				x := testenv.StartX(b, 1920, 1080)
				server = x.Pid()
				win = testenv.GTKWindow(b, red)
			} else {
				wl := testenv.GnomeWayland(b, 1920, 1080)
				server = wl.Pid("mutter")
				win = wl.Window(red)
				cfg.Portal = NewPortal(wl.SeedScreencast(), nil, nil)
			}
			for range b.N {
				r := runScreen(b, cfg, safetyPoll, heard, image.Pt(960, 540))
				r.until(b, 10*time.Second, red)
				colours := []color.RGBA{blue, green, red}
				var lat []time.Duration
				for i := range 20 {
					time.Sleep(50 * time.Millisecond)
					c := colours[i%len(colours)]
					t0 := time.Now()
					win.Paint(c)
					lat = append(lat, r.until(b, 5*time.Second, c).at.Sub(t0))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms/change")

				win.Animate(60)
				time.Sleep(time.Second) // the animation under way
				drain(r)
				const window = 5 * time.Second
				self0, srv0, t0 := selfCPU(), procCPU(server), time.Now()
				n := 0
				for end := time.After(window); ; {
					select {
					case <-r.emits:
						n++
						continue
					case <-end:
					}
					break
				}
				wall := time.Since(t0).Seconds()
				b.ReportMetric(float64(n)/wall, "fps")
				b.ReportMetric(100*(selfCPU()-self0)/wall, "cpu%")
				b.ReportMetric(100*(procCPU(server)-srv0)/wall, "server-cpu%")
				win.Animate(0)
				r.cancel()
			}
		})
	}
}

// drain empties r's pictures.
func drain(r *screenRun) {
	for {
		select {
		case <-r.emits:
		default:
			return
		}
	}
}

// selfCPU is this process's CPU time so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// procCPU is process pid's CPU time so far, in seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

#!/usr/bin/python3
# A full-screen GTK 3 window in one colour, for the capture tests (Wayland or
# X11, as GDK_BACKEND says): each line "R G B" on stdin repaints it; it
# prints "ready" once shown and "painted R G B" after each repaint has been
# drawn. "animate N" repaints it N times a second in changing colours until
# the next line ("animate 0" stops). Input it receives is printed as
# "motion X Y", "press N"/"release N" (mouse buttons), "scroll DIR" and
# "keydown NAME"/"keyup NAME" (GDK key names).
import sys
import gi
gi.require_version("Gtk", "3.0")
from gi.repository import Gdk, Gtk, GLib

color = [0.0, 0.0, 0.0]
pending = []

def draw(widget, cr):
    cr.set_source_rgb(*color)
    cr.paint()
    while pending:
        print("painted %s" % pending.pop(0), flush=True)
    return False

anim = {"id": 0, "n": 0}

def step():
    anim["n"] += 1
    k = anim["n"]
    color[:] = [(k * 37 % 256) / 255.0, (k * 91 % 256) / 255.0, (k * 151 % 256) / 255.0]
    area.queue_draw()
    return True

def on_line(source, cond):
    line = sys.stdin.readline()
    if not line:
        Gtk.main_quit()
        return False
    if anim["id"]:
        GLib.source_remove(anim["id"])
        anim["id"] = 0
    if line.startswith("animate"):
        n = int(line.split()[1])
        if n > 0:
            anim["id"] = GLib.timeout_add(max(1, 1000 // n), step)
        return True
    r, g, b = (int(v) for v in line.split())
    color[:] = [r / 255.0, g / 255.0, b / 255.0]
    pending.append("%d %d %d" % (r, g, b))
    area.queue_draw()
    return True

win = Gtk.Window(title="deskcast-test")
win.set_decorated(False)
area = Gtk.DrawingArea()
area.connect("draw", draw)
win.add(area)
win.connect("destroy", Gtk.main_quit)

def say(s):
    print(s, flush=True)
    return False

area.add_events(Gdk.EventMask.POINTER_MOTION_MASK | Gdk.EventMask.BUTTON_PRESS_MASK |
                Gdk.EventMask.BUTTON_RELEASE_MASK | Gdk.EventMask.SCROLL_MASK |
                Gdk.EventMask.SMOOTH_SCROLL_MASK)
area.connect("motion-notify-event", lambda w, e: say("motion %d %d" % (e.x, e.y)))
area.connect("button-press-event", lambda w, e: e.type == Gdk.EventType.BUTTON_PRESS and say("press %d" % e.button))
area.connect("button-release-event", lambda w, e: say("release %d" % e.button))
def on_scroll(w, e):
    d = e.direction
    if d == Gdk.ScrollDirection.SMOOTH:
        ok, dx, dy = e.get_scroll_deltas()
        d = "down" if dy > 0 else "up" if dy < 0 else "right" if dx > 0 else "left"
    else:
        d = d.value_nick
    return say("scroll %s" % d)
area.connect("scroll-event", on_scroll)
win.connect("key-press-event", lambda w, e: say("keydown %s" % Gdk.keyval_name(e.keyval)))
win.connect("key-release-event", lambda w, e: say("keyup %s" % Gdk.keyval_name(e.keyval)))
# Full screen under a window manager (mutter); sized to the monitor where
# there is none (a bare Xvfb).
geo = Gdk.Display.get_default().get_monitor(0).get_geometry()
win.set_default_size(geo.width, geo.height)
win.move(0, 0)
win.fullscreen()
win.show_all()
GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_line)
GLib.timeout_add(300, lambda: print("ready", flush=True) and False)
Gtk.main()

#!/usr/bin/python3
# A full-screen GTK 3 window on Wayland in one colour, for the portal tests:
# each line "R G B" on stdin repaints it; it prints "ready" once shown and
# "painted R G B" after each repaint has been drawn.
import sys
import gi
gi.require_version("Gtk", "3.0")
from gi.repository import Gtk, GLib

color = [0.0, 0.0, 0.0]
pending = []

def draw(widget, cr):
    cr.set_source_rgb(*color)
    cr.paint()
    while pending:
        print("painted %s" % pending.pop(0), flush=True)
    return False

def on_line(source, cond):
    line = sys.stdin.readline()
    if not line:
        Gtk.main_quit()
        return False
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
win.fullscreen()
win.show_all()
GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_line)
GLib.timeout_add(300, lambda: print("ready", flush=True) and False)
Gtk.main()

// A screen-cast stream from PipeWire, with libpipewire loaded at run time.
#ifndef DESKCAST_PW_H
#define DESKCAST_PW_H

#include <stddef.h>
#include <stdint.h>

typedef struct dc_stream dc_stream;

// dc_format is a negotiated frame layout.
enum { DC_BGRX = 0, DC_RGBX = 1 };

typedef struct {
	int width, height;
	int format;    // DC_BGRX or DC_RGBX
	uint64_t seq;  // frames received so far
} dc_frame;

typedef struct {
	int visible;      // the cursor is over the stream
	int x, y;         // hotspot position in stream pixels
	int hot_x, hot_y; // hotspot offset in the bitmap
	int w, h;         // bitmap size; 0 when none was sent yet
	uint64_t serial;  // changes whenever the bitmap does
	uint64_t seq;     // changes whenever anything here does
} dc_cursor;

// dc_load loads libpipewire-0.3 once; it returns NULL or why it cannot.
const char *dc_load(void);

// dc_open connects to the PipeWire remote fd (taking ownership) and to node;
// notify_fd is written to (8 bytes, eventfd style) on every frame, cursor
// change and state change. On failure it returns NULL with err filled in.
dc_stream *dc_open(int fd, uint32_t node, int max_fps, int notify_fd, char *err, size_t errlen);

// dc_state is 0 while connecting, 1 while streaming, 2 when paused by the
// compositor, -1 on error (err filled in) or when the stream went away.
int dc_state(dc_stream *s, char *err, size_t errlen);

// dc_copy copies the newest frame into dst (rows of width*4 bytes, tightly
// packed) if it is newer than seq and fits in cap bytes. It returns 1 when it
// copied, 0 when there is no newer frame, -1 when dst is too small; info gets
// the frame's layout either way.
int dc_copy(dc_stream *s, uint64_t seq, uint8_t *dst, size_t cap, dc_frame *info);

// dc_get_cursor fills c; when the bitmap is newer than serial and fits in cap
// bytes (RGBA, width*4 per row), it is copied into rgba too.
void dc_get_cursor(dc_stream *s, uint64_t serial, uint8_t *rgba, size_t cap, dc_cursor *c);

// dc_close disconnects and frees s.
void dc_close(dc_stream *s);

#endif

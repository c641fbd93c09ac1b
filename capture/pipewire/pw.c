//go:build linux && cgo

// The PipeWire side of a screen cast: a pw_stream on the portal's remote,
// negotiating 32-bit RGB in shared memory, keeping the newest frame until
// the Go side copies it. libpipewire is loaded with dlopen, so that the
// binary still runs (on X11) where it is not installed; only its headers are
// needed to build, and the spa_* helpers they define are all inline.

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pipewire/pipewire.h>
#include <spa/buffer/meta.h>
#include <spa/param/video/format-utils.h>
#include <spa/pod/builder.h>

#include "pw.h"

// The libpipewire functions used, resolved by dc_load.
static struct {
	void (*init)(int *, char ***);
	struct pw_thread_loop *(*thread_loop_new)(const char *, const struct spa_dict *);
	struct pw_loop *(*thread_loop_get_loop)(struct pw_thread_loop *);
	int (*thread_loop_start)(struct pw_thread_loop *);
	void (*thread_loop_stop)(struct pw_thread_loop *);
	void (*thread_loop_destroy)(struct pw_thread_loop *);
	void (*thread_loop_lock)(struct pw_thread_loop *);
	void (*thread_loop_unlock)(struct pw_thread_loop *);
	struct pw_context *(*context_new)(struct pw_loop *, struct pw_properties *, size_t);
	void (*context_destroy)(struct pw_context *);
	struct pw_core *(*context_connect_fd)(struct pw_context *, int, struct pw_properties *, size_t);
	int (*core_disconnect)(struct pw_core *);
	struct pw_properties *(*properties_new)(const char *, ...);
	struct pw_stream *(*stream_new)(struct pw_core *, const char *, struct pw_properties *);
	void (*stream_add_listener)(struct pw_stream *, struct spa_hook *, const struct pw_stream_events *, void *);
	int (*stream_connect)(struct pw_stream *, enum spa_direction, uint32_t, enum pw_stream_flags, const struct spa_pod **, uint32_t);
	int (*stream_update_params)(struct pw_stream *, const struct spa_pod **, uint32_t);
	struct pw_buffer *(*stream_dequeue_buffer)(struct pw_stream *);
	int (*stream_queue_buffer)(struct pw_stream *, struct pw_buffer *);
	int (*stream_disconnect)(struct pw_stream *);
	void (*stream_destroy)(struct pw_stream *);
} pw;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *load_err;
static char load_msg[256];

#define SYM(field, name)                                                          \
	do {                                                                      \
		*(void **)(&pw.field) = dlsym(lib, name);                         \
		if (!pw.field) {                                                  \
			snprintf(load_msg, sizeof load_msg, "libpipewire-0.3 has no %s", name); \
			load_err = load_msg;                                      \
			return;                                                   \
		}                                                                 \
	} while (0)

static void load(void) {
	void *lib = dlopen("libpipewire-0.3.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(load_msg, sizeof load_msg, "loading libpipewire-0.3: %s", dlerror());
		load_err = load_msg;
		return;
	}
	SYM(init, "pw_init");
	SYM(thread_loop_new, "pw_thread_loop_new");
	SYM(thread_loop_get_loop, "pw_thread_loop_get_loop");
	SYM(thread_loop_start, "pw_thread_loop_start");
	SYM(thread_loop_stop, "pw_thread_loop_stop");
	SYM(thread_loop_destroy, "pw_thread_loop_destroy");
	SYM(thread_loop_lock, "pw_thread_loop_lock");
	SYM(thread_loop_unlock, "pw_thread_loop_unlock");
	SYM(context_new, "pw_context_new");
	SYM(context_destroy, "pw_context_destroy");
	SYM(context_connect_fd, "pw_context_connect_fd");
	SYM(core_disconnect, "pw_core_disconnect");
	SYM(properties_new, "pw_properties_new");
	SYM(stream_new, "pw_stream_new");
	SYM(stream_add_listener, "pw_stream_add_listener");
	SYM(stream_connect, "pw_stream_connect");
	SYM(stream_update_params, "pw_stream_update_params");
	SYM(stream_dequeue_buffer, "pw_stream_dequeue_buffer");
	SYM(stream_queue_buffer, "pw_stream_queue_buffer");
	SYM(stream_disconnect, "pw_stream_disconnect");
	SYM(stream_destroy, "pw_stream_destroy");
	pw.init(NULL, NULL);
}

const char *dc_load(void) {
	pthread_once(&load_once, load);
	return load_err;
}

// The largest cursor bitmap asked for; bigger ones are dropped.
#define CURSOR_MAX 256

struct dc_stream {
	struct pw_thread_loop *loop;
	struct pw_context *context;
	struct pw_core *core;
	struct pw_stream *stream;
	struct spa_hook stream_listener;
	struct spa_hook core_listener;
	struct pw_registry *registry;
	struct spa_hook registry_listener;
	uint32_t node;
	int notify_fd;

	// Guarded by the thread loop's lock.
	struct spa_video_info_raw info;
	int negotiated;
	int state;
	char err[256];
	struct pw_buffer *held; // the newest frame, not yet given back
	uint32_t held_offset;   // its chunk's offset and stride, as checked
	int held_stride;
	uint64_t seq;
	dc_cursor cursor;
	uint8_t cursor_rgba[CURSOR_MAX * CURSOR_MAX * 4];
};

static void notify(dc_stream *s) {
	uint64_t one = 1;
	ssize_t n = write(s->notify_fd, &one, sizeof one);
	(void)n; // a full counter still wakes the reader
}

static void set_error(dc_stream *s, const char *msg) {
	if (s->state != -1) {
		s->state = -1;
		snprintf(s->err, sizeof s->err, "%s", msg ? msg : "the stream ended");
	}
	notify(s);
}

static void on_state_changed(void *data, enum pw_stream_state old, enum pw_stream_state state, const char *error) {
	dc_stream *s = data;
	switch (state) {
	case PW_STREAM_STATE_ERROR:
		set_error(s, error);
		break;
	case PW_STREAM_STATE_UNCONNECTED:
		set_error(s, "the screen-cast stream went away");
		break;
	case PW_STREAM_STATE_PAUSED:
		if (s->state == 1)
			s->state = 2;
		notify(s);
		break;
	case PW_STREAM_STATE_STREAMING:
		if (s->state != -1)
			s->state = 1;
		notify(s);
		break;
	default:
		break;
	}
}

// rgba_from packs the pixel at p, in video format f, as RGBA.
static void rgba_from(uint32_t f, const uint8_t *p, uint8_t *o) {
	switch (f) {
	case SPA_VIDEO_FORMAT_RGBA:
		o[0] = p[0], o[1] = p[1], o[2] = p[2], o[3] = p[3];
		break;
	case SPA_VIDEO_FORMAT_BGRA:
		o[0] = p[2], o[1] = p[1], o[2] = p[0], o[3] = p[3];
		break;
	case SPA_VIDEO_FORMAT_ARGB:
		o[0] = p[1], o[1] = p[2], o[2] = p[3], o[3] = p[0];
		break;
	case SPA_VIDEO_FORMAT_ABGR:
		o[0] = p[3], o[1] = p[2], o[2] = p[1], o[3] = p[0];
		break;
	default:
		o[0] = o[1] = o[2] = o[3] = 0;
	}
}

// read_cursor takes the cursor metadata of b, if any. Every offset in it
// comes from the compositor and is checked against the metadata's size.
static void read_cursor(dc_stream *s, struct spa_buffer *b) {
	struct spa_meta *m = spa_buffer_find_meta(b, SPA_META_Cursor);
	if (!m || !m->data || m->size < sizeof(struct spa_meta_cursor))
		return;
	struct spa_meta_cursor *mc = m->data;
	dc_cursor *c = &s->cursor;
	int visible = spa_meta_cursor_is_valid(mc) ? 1 : 0;
	if (!visible) {
		if (c->visible) {
			c->visible = 0;
			c->seq++;
		}
		return;
	}
	c->visible = 1;
	c->x = mc->position.x, c->y = mc->position.y;
	c->seq++;
	if (mc->bitmap_offset < sizeof *mc || (uint64_t)mc->bitmap_offset + sizeof(struct spa_meta_bitmap) > m->size)
		return;
	struct spa_meta_bitmap *bm = SPA_PTROFF(mc, mc->bitmap_offset, struct spa_meta_bitmap);
	if (bm->format == 0 || bm->offset < sizeof *bm)
		return;
	uint32_t w = bm->size.width, h = bm->size.height;
	if (w == 0 || h == 0 || w > CURSOR_MAX || h > CURSOR_MAX || bm->stride < (int32_t)(w * 4))
		return;
	uint64_t end = (uint64_t)mc->bitmap_offset + bm->offset + (uint64_t)bm->stride * (h - 1) + (uint64_t)w * 4;
	if (end > m->size)
		return;
	const uint8_t *src = SPA_PTROFF(bm, bm->offset, uint8_t);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			rgba_from(bm->format, src + (size_t)y * bm->stride + x * 4, s->cursor_rgba + ((size_t)y * w + x) * 4);
	c->w = w, c->h = h;
	c->hot_x = mc->hotspot.x, c->hot_y = mc->hotspot.y;
	c->serial++;
}

// frame_ok reports whether b holds a whole picture (not a cursor-only
// update, not marked corrupted, inside its memory), and gives the offset
// and stride it was checked with: the compositor may write the chunk again.
static int frame_ok(dc_stream *s, struct spa_buffer *b, uint32_t *offset, int *stride_out) {
	if (b->n_datas < 1 || !b->datas[0].data || !b->datas[0].chunk)
		return 0;
	struct spa_chunk *c = b->datas[0].chunk;
	if (c->size == 0 || (c->flags & SPA_CHUNK_FLAG_CORRUPTED))
		return 0;
	struct spa_meta_header *h = spa_buffer_find_meta_data(b, SPA_META_Header, sizeof *h);
	if (h && (h->flags & SPA_META_HEADER_FLAG_CORRUPTED))
		return 0;
	uint32_t off = c->offset;
	int stride = c->stride;
	if (stride < (int)s->info.size.width * 4)
		stride = (int)s->info.size.width * 4;
	if (s->info.size.width == 0 || s->info.size.height == 0)
		return 0;
	uint64_t need = (uint64_t)off + (uint64_t)stride * (s->info.size.height - 1) + (uint64_t)s->info.size.width * 4;
	if (need > b->datas[0].maxsize)
		return 0;
	*offset = off, *stride_out = stride;
	return 1;
}

static void on_process(void *data) {
	dc_stream *s = data;
	struct pw_buffer *b;
	uint64_t cursor = s->cursor.seq, seq = s->seq;
	// Take every queued buffer, oldest first: each may carry a new pointer
	// (a shape comes once, with its change), and the newest whole picture
	// is kept; the rest go back at once.
	while ((b = pw.stream_dequeue_buffer(s->stream))) {
		read_cursor(s, b->buffer);
		uint32_t off;
		int stride;
		if (!s->negotiated || !frame_ok(s, b->buffer, &off, &stride)) {
			pw.stream_queue_buffer(s->stream, b);
			continue;
		}
		if (s->held)
			pw.stream_queue_buffer(s->stream, s->held);
		s->held = b, s->held_offset = off, s->held_stride = stride;
		s->seq++;
	}
	if (s->seq != seq || s->cursor.seq != cursor)
		notify(s);
}

static void on_param_changed(void *data, uint32_t id, const struct spa_pod *param) {
	dc_stream *s = data;
	if (id != SPA_PARAM_Format || !param)
		return;
	uint32_t mtype, msub;
	if (spa_format_parse(param, &mtype, &msub) < 0 || mtype != SPA_MEDIA_TYPE_video || msub != SPA_MEDIA_SUBTYPE_raw)
		return;
	if (spa_format_video_raw_parse(param, &s->info) < 0)
		return;
	if (s->held) { // a frame of the old size
		pw.stream_queue_buffer(s->stream, s->held);
		s->held = NULL;
	}
	s->negotiated = 1;

	uint8_t buf[1024];
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof buf);
	const struct spa_pod *params[3];
	params[0] = spa_pod_builder_add_object(&b, SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers,
		SPA_PARAM_BUFFERS_buffers, SPA_POD_CHOICE_RANGE_Int(4, 2, 16),
		SPA_PARAM_BUFFERS_blocks, SPA_POD_Int(1),
		SPA_PARAM_BUFFERS_dataType, SPA_POD_CHOICE_FLAGS_Int((1 << SPA_DATA_MemPtr) | (1 << SPA_DATA_MemFd)));
	params[1] = spa_pod_builder_add_object(&b, SPA_TYPE_OBJECT_ParamMeta, SPA_PARAM_Meta,
		SPA_PARAM_META_type, SPA_POD_Id(SPA_META_Header),
		SPA_PARAM_META_size, SPA_POD_Int(sizeof(struct spa_meta_header)));
	size_t cs = sizeof(struct spa_meta_cursor) + sizeof(struct spa_meta_bitmap) + 64 * 64 * 4;
	// Offer room for up to 1024×1024, as compositors ask for large ones
	// (mutter 384×384); bitmaps past CURSOR_MAX are left out on our side.
	size_t cmax = sizeof(struct spa_meta_cursor) + sizeof(struct spa_meta_bitmap) + 1024 * 1024 * 4;
	params[2] = spa_pod_builder_add_object(&b, SPA_TYPE_OBJECT_ParamMeta, SPA_PARAM_Meta,
		SPA_PARAM_META_type, SPA_POD_Id(SPA_META_Cursor),
		SPA_PARAM_META_size, SPA_POD_CHOICE_RANGE_Int(cs, sizeof(struct spa_meta_cursor), cmax));
	pw.stream_update_params(s->stream, params, 3);
	notify(s);
}

static const struct pw_stream_events stream_events = {
	PW_VERSION_STREAM_EVENTS,
	.state_changed = on_state_changed,
	.param_changed = on_param_changed,
	.process = on_process,
};

static void on_core_error(void *data, uint32_t id, int seq, int res, const char *message) {
	dc_stream *s = data;
	if (id == PW_ID_CORE)
		set_error(s, message);
}

static const struct pw_core_events core_events = {
	PW_VERSION_CORE_EVENTS,
	.error = on_core_error,
};

// on_global_remove ends the stream when its node goes: the compositor quit
// or crashed, which a stream by itself may only see as a pause.
static void on_global_remove(void *data, uint32_t id) {
	dc_stream *s = data;
	if (id == s->node)
		set_error(s, "the compositor's screen-cast stream went away");
}

static const struct pw_registry_events registry_events = {
	PW_VERSION_REGISTRY_EVENTS,
	.global_remove = on_global_remove,
};

dc_stream *dc_open(int fd, uint32_t node, int max_fps, int notify_fd, char *err, size_t errlen) {
	const char *why = dc_load();
	if (why) {
		snprintf(err, errlen, "%s", why);
		close(fd);
		return NULL;
	}
	dc_stream *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	s->notify_fd = notify_fd;
	s->loop = pw.thread_loop_new("deskcast-pipewire", NULL);
	if (!s->loop) {
		snprintf(err, errlen, "creating the PipeWire loop: %s", strerror(errno));
		close(fd);
		free(s);
		return NULL;
	}
	s->context = pw.context_new(pw.thread_loop_get_loop(s->loop), NULL, 0);
	if (!s->context) {
		snprintf(err, errlen, "creating the PipeWire context: %s", strerror(errno));
		close(fd);
		dc_close(s);
		return NULL;
	}
	if (pw.thread_loop_start(s->loop) < 0) {
		snprintf(err, errlen, "starting the PipeWire loop");
		close(fd);
		dc_close(s);
		return NULL;
	}
	pw.thread_loop_lock(s->loop);
	s->core = pw.context_connect_fd(s->context, fd, NULL, 0); // takes fd, even on failure
	if (!s->core) {
		snprintf(err, errlen, "connecting to PipeWire: %s", strerror(errno));
		pw.thread_loop_unlock(s->loop);
		dc_close(s);
		return NULL;
	}
	pw_core_add_listener(s->core, &s->core_listener, &core_events, s);
	s->node = node;
	s->registry = pw_core_get_registry(s->core, PW_VERSION_REGISTRY, 0);
	if (s->registry)
		pw_registry_add_listener(s->registry, &s->registry_listener, &registry_events, s);
	s->stream = pw.stream_new(s->core, "Deskcast",
		pw.properties_new(PW_KEY_MEDIA_TYPE, "Video", PW_KEY_MEDIA_CATEGORY, "Capture",
			PW_KEY_MEDIA_ROLE, "Screen", NULL));
	if (!s->stream) {
		snprintf(err, errlen, "creating the PipeWire stream: %s", strerror(errno));
		pw.thread_loop_unlock(s->loop);
		dc_close(s);
		return NULL;
	}
	pw.stream_add_listener(s->stream, &s->stream_listener, &stream_events, s);

	uint8_t buf[1024];
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof buf);
	if (max_fps < 1)
		max_fps = 30;
	const struct spa_pod *params[1];
	params[0] = spa_pod_builder_add_object(&b, SPA_TYPE_OBJECT_Format, SPA_PARAM_EnumFormat,
		SPA_FORMAT_mediaType, SPA_POD_Id(SPA_MEDIA_TYPE_video),
		SPA_FORMAT_mediaSubtype, SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw),
		SPA_FORMAT_VIDEO_format, SPA_POD_CHOICE_ENUM_Id(5, SPA_VIDEO_FORMAT_BGRx, SPA_VIDEO_FORMAT_BGRx,
			SPA_VIDEO_FORMAT_BGRA, SPA_VIDEO_FORMAT_RGBx, SPA_VIDEO_FORMAT_RGBA),
		SPA_FORMAT_VIDEO_size, SPA_POD_CHOICE_RANGE_Rectangle(&SPA_RECTANGLE(1920, 1080),
			&SPA_RECTANGLE(1, 1), &SPA_RECTANGLE(16384, 16384)),
		SPA_FORMAT_VIDEO_framerate, SPA_POD_Fraction(&SPA_FRACTION(0, 1)),
		SPA_FORMAT_VIDEO_maxFramerate, SPA_POD_CHOICE_RANGE_Fraction(&SPA_FRACTION(max_fps, 1),
			&SPA_FRACTION(1, 1), &SPA_FRACTION(max_fps, 1)));
	int r = pw.stream_connect(s->stream, SPA_DIRECTION_INPUT, node,
		PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS, params, 1);
	pw.thread_loop_unlock(s->loop);
	if (r < 0) {
		snprintf(err, errlen, "connecting the PipeWire stream to node %u: %s", node, strerror(-r));
		dc_close(s);
		return NULL;
	}
	return s;
}

int dc_state(dc_stream *s, char *err, size_t errlen) {
	pw.thread_loop_lock(s->loop);
	int st = s->state;
	if (st == -1)
		snprintf(err, errlen, "%s", s->err);
	pw.thread_loop_unlock(s->loop);
	return st;
}

int dc_copy(dc_stream *s, uint64_t seq, uint8_t *dst, size_t cap, dc_frame *info) {
	pw.thread_loop_lock(s->loop);
	info->width = s->info.size.width;
	info->height = s->info.size.height;
	info->format = (s->info.format == SPA_VIDEO_FORMAT_RGBx || s->info.format == SPA_VIDEO_FORMAT_RGBA) ? DC_RGBX : DC_BGRX;
	info->seq = s->seq;
	int r = 0;
	if (dst && s->held && s->seq != seq) {
		size_t row = (size_t)info->width * 4;
		if (row * info->height > cap) {
			r = -1; // kept: the caller asks again with a buffer of this size
		} else {
			struct spa_data *d = &s->held->buffer->datas[0];
			size_t stride = (size_t)s->held_stride;
			const uint8_t *src = SPA_PTROFF(d->data, s->held_offset, uint8_t);
			if (stride == row) {
				memcpy(dst, src, row * info->height);
			} else {
				for (int y = 0; y < info->height; y++)
					memcpy(dst + y * row, src + (size_t)y * stride, row);
			}
			r = 1;
			// Copied: give the buffer back to the compositor.
			pw.stream_queue_buffer(s->stream, s->held);
			s->held = NULL;
		}
	}
	pw.thread_loop_unlock(s->loop);
	return r;
}

void dc_get_cursor(dc_stream *s, uint64_t serial, uint8_t *rgba, size_t cap, dc_cursor *c) {
	pw.thread_loop_lock(s->loop);
	*c = s->cursor;
	size_t n = (size_t)c->w * c->h * 4;
	if (c->serial != serial && n > 0 && n <= cap)
		memcpy(rgba, s->cursor_rgba, n);
	pw.thread_loop_unlock(s->loop);
}

void dc_close(dc_stream *s) {
	if (!s)
		return;
	if (s->loop)
		pw.thread_loop_stop(s->loop);
	if (s->stream) {
		pw.stream_disconnect(s->stream);
		pw.stream_destroy(s->stream);
	}
	if (s->core)
		pw.core_disconnect(s->core);
	if (s->context)
		pw.context_destroy(s->context);
	if (s->loop)
		pw.thread_loop_destroy(s->loop);
	free(s);
}

/* Flatlane C ABI: the single-producer/single-consumer channel of the C++ runtime behind plain C
 * types, for language bindings (the C# library P/Invokes it) and C programs.
 *
 * Conventions
 *  - Every fallible function returns an int error code: FLATLANE_OK (0) or one of the
 *    flatlane_errc values, which are the C++ runtime's Errc values, number for number.
 *  - On failure, flatlane_last_error() describes the most recent failure ON THE CALLING THREAD
 *    (operation, channel name, sizes). It stays valid until the next failing call on that thread.
 *    Successful calls leave it alone.
 *  - Endpoints are opaque handles. open allocates; destroy frees. Every other call on a handle
 *    is allocation-free ("hot"): reserve, commit, commit_tail, abort, write_message, read,
 *    release, read_message, release_message, stats, peer_attached, close. A reader's table of
 *    held frames starts with room for 64 and grows (allocates) only when more frames than ever
 *    before are held at once.
 *  - Timeouts are in nanoseconds: negative waits forever, 0 polls once.
 *  - No function lets a C++ exception escape.
 *
 * Threading: a writer is used by one thread at a time, and so is a reader together with its
 * frames and messages (read, release, read_message and stats must not overlap; the reader's
 * cursor and counters are private to the consuming thread, as in C++). The exceptions are
 * *_close, *_peer_attached and flatlane_writer_stats (which reads only shared atomics): they may
 * be called from any thread while the handle exists. close interrupts a reserve, read,
 * write_message or read_message blocked in another thread, which then returns FLATLANE_CLOSED.
 * Destroy must not overlap any other call on the same handle.
 */
#ifndef FLATLANE_FLATLANE_C_H
#define FLATLANE_FLATLANE_C_H

#include <stddef.h>
#include <stdint.h>

#if defined(FLATLANE_C_BUILDING)
#define FLATLANE_C_API __attribute__((visibility("default")))
#else
#define FLATLANE_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a struct or signature below changes incompatibly. */
#define FLATLANE_C_ABI_VERSION 1

/* Error codes: identical to flatlane::Errc (runtime/cpp/include/flatlane/error.hpp). */
typedef enum flatlane_errc {
  FLATLANE_OK = 0,
  FLATLANE_NOT_FOUND = 1,            /* no segment with that name */
  FLATLANE_NOT_FLATLANE = 2,         /* the object exists but is not a Flatlane segment */
  FLATLANE_INCOMPATIBLE_VERSION = 3, /* protocol version differs */
  FLATLANE_LAYOUT_MISMATCH = 4,      /* same version, different layout hash */
  FLATLANE_TYPE_MISMATCH = 5,        /* message type identity differs */
  FLATLANE_TRUNCATED = 6,            /* segment smaller than its header says */
  FLATLANE_PERMISSION_DENIED = 7,    /* open/create refused by the OS */
  FLATLANE_ALREADY_EXISTS = 8,       /* create: a live segment of that name exists */
  FLATLANE_BUSY = 9,                 /* the role (writer/reader) is held by a live process */
  FLATLANE_NO_SPACE = 10,            /* /dev/shm cannot hold the segment */
  FLATLANE_INVALID_ARGUMENT = 11,    /* bad name, size, option, handle state or token */
  FLATLANE_MESSAGE_TOO_LARGE = 12,   /* bigger than the frame or message limit */
  FLATLANE_TIMEOUT = 13,             /* the wait ran out */
  FLATLANE_PEER_DEAD = 14,           /* the peer process died */
  FLATLANE_PEER_CLOSED = 15,         /* the peer detached cleanly */
  FLATLANE_CLOSED = 16,              /* this endpoint was closed */
  FLATLANE_CORRUPT = 17,             /* shared memory violates the protocol */
  FLATLANE_SYSTEM = 18               /* other OS error (errno in the message) */
} flatlane_errc;

typedef enum flatlane_open_mode {
  FLATLANE_OPEN_CREATE = 0,         /* create (reclaiming a stale segment); fail if a live one exists */
  FLATLANE_OPEN_OPEN = 1,           /* attach to an existing segment */
  FLATLANE_OPEN_CREATE_OR_OPEN = 2  /* open if it exists, else create */
} flatlane_open_mode;

typedef enum flatlane_wait_strategy {
  FLATLANE_WAIT_BUSY_SPIN = 0,       /* never sleeps */
  FLATLANE_WAIT_SPIN_THEN_SLEEP = 1, /* spin for spin_budget_ns, then sleep on a futex */
  FLATLANE_WAIT_BLOCKING = 2         /* sleep on a futex at once */
} flatlane_wait_strategy;

/* Channel options. Call flatlane_options_init first: it writes the C++ defaults, so a binding only
 * sets what it changes. Fields marked (create) only matter when this call creates the segment;
 * an opener takes them from the segment header. */
typedef struct flatlane_options {
  uint32_t struct_size;            /* sizeof(flatlane_options), set by flatlane_options_init */
  int32_t open_mode;               /* flatlane_open_mode; default CREATE_OR_OPEN */
  uint64_t ring_capacity;          /* (create) bytes, rounded up to a power of two >= 4096; 1 MiB */
  uint32_t max_frame_payload;      /* (create) 0 = largest allowed (capacity/2 - 32) */
  uint32_t chunk_size;             /* (create) 0 = min(max_frame_payload, 1 MiB) */
  uint32_t file_mode;              /* (create) permission bits of /dev/shm/flatlane.<name>; 0600 */
  int32_t wait_strategy;           /* flatlane_wait_strategy; default SPIN_THEN_SLEEP */
  int64_t spin_budget_ns;          /* SPIN_THEN_SLEEP only; 50 us */
  int64_t liveness_interval_ns;    /* longest futex sleep between peer liveness checks; 50 ms */
  uint64_t max_message_size;       /* reader: larger reassemblies fail MESSAGE_TOO_LARGE; 4 GiB */
  const char* type_name;           /* NULL or "" = untyped; else checked on open, stored on create */
  uint64_t type_hash;              /* checked together with type_name */
  int32_t unlink_on_close;         /* nonzero: the last endpoint to close removes the name; 1 */
  int32_t reserved0;               /* must be 0 */
} flatlane_options;

/* Counters of one endpoint, read from its shared endpoint block. */
typedef struct flatlane_stats {
  uint64_t frames;          /* frames committed (writer) / delivered (reader) so far */
  uint64_t messages;        /* whole messages */
  uint64_t bytes;           /* payload bytes */
  uint64_t occupancy_bytes; /* committed but not yet released */
  uint64_t capacity_bytes;  /* ring capacity */
  uint64_t held_frames;     /* reader: frames delivered and not yet released; writer: 0 */
  uint64_t dropped_partial_messages; /* reader: chunked messages abandoned half-way; writer: 0 */
  uint32_t max_frame_payload;        /* largest reserve() size */
  uint32_t chunk_size;               /* frame size write_message splits large messages into */
} flatlane_stats;

/* One frame held by a reader: a zero-copy view into the ring. `data` stays valid and unchanged
 * until the frame is released with its `token` (or the reader is destroyed). */
typedef struct flatlane_frame {
  const uint8_t* data;
  uint64_t size;
  uint64_t seq;             /* the writer's frame sequence number (consecutive, from 1) */
  uint64_t token;           /* pass to flatlane_reader_release; never 0 for a held frame */
  uint32_t flags;           /* FLATLANE_FRAME_* bits */
  uint32_t chunk_index;     /* chunk frames: index of this chunk in its message */
  uint32_t chunk_count;     /* chunk frames: chunks in the message */
  uint32_t reserved0;
  uint64_t message_size;    /* chunk frames: size of the whole message */
} flatlane_frame;

#define FLATLANE_FRAME_FIRST 0x2u   /* first frame of a message */
#define FLATLANE_FRAME_LAST 0x4u    /* last frame of a message */
#define FLATLANE_FRAME_CHUNKED 0x8u /* one chunk of a message larger than a frame */

/* One whole message delivered by flatlane_reader_read_message. `data` is valid until the next
 * read_message on the reader, flatlane_reader_release_message(token), or destroy. */
typedef struct flatlane_message {
  const uint8_t* data;
  uint64_t size;
  uint64_t seq;             /* sequence number of its first frame */
  uint64_t token;           /* pass to flatlane_reader_release_message */
  int32_t zero_copy;        /* 1: data points into the ring; 0: into the reader's reassembly buffer */
  int32_t reserved0;
} flatlane_message;

typedef struct flatlane_writer flatlane_writer;
typedef struct flatlane_reader flatlane_reader;

/* ---- library ---------------------------------------------------------------------------- */

FLATLANE_C_API int flatlane_abi_version(void);
/* Static identifier of a code, e.g. "peer_dead" (the C++ enumerator's name); "unknown" for
 * values outside flatlane_errc. Messages use the runtime's prose instead ("peer process died"). */
FLATLANE_C_API const char* flatlane_errc_name(int code);
/* Message of the calling thread's most recent failure ("" if none). Thread-local storage owned by
 * the library: copy it before the next failing call on this thread. */
FLATLANE_C_API const char* flatlane_last_error(void);
/* Code of the calling thread's most recent failure (FLATLANE_OK if none). */
FLATLANE_C_API int flatlane_last_error_code(void);
FLATLANE_C_API void flatlane_options_init(flatlane_options* opts);
/* Removes /dev/shm/flatlane.<name>; mappings stay valid. Returns OK, NOT_FOUND or an error. */
FLATLANE_C_API int flatlane_unlink(const char* name);

/* ---- writer ----------------------------------------------------------------------------- */

/* Opens or creates the channel and claims its writer role. opts may be NULL (defaults). */
FLATLANE_C_API int flatlane_writer_open(const char* name, const flatlane_options* opts, flatlane_writer** out);
/* Writable region of exactly n bytes inside the ring, 16-byte aligned; waits for space up to
 * timeout_ns. At most one reservation is outstanding; a new reserve drops an uncommitted one.
 * Errors: MESSAGE_TOO_LARGE (n > max_frame_payload), TIMEOUT, PEER_DEAD, PEER_CLOSED, CLOSED. */
FLATLANE_C_API int flatlane_writer_reserve(flatlane_writer* w, uint64_t n, int64_t timeout_ns, uint8_t** out_ptr);
/* Publishes the first `used` bytes of the reservation. INVALID_ARGUMENT if there is no
 * reservation or used > n (nothing is published then; the reservation stays). */
FLATLANE_C_API int flatlane_writer_commit(flatlane_writer* w, uint64_t used);
/* Publishes the LAST `used` bytes of the reservation in place (FlatBuffers build back to front). */
FLATLANE_C_API int flatlane_writer_commit_tail(flatlane_writer* w, uint64_t used);
/* Drops the reservation; nothing becomes visible. No-op without one. */
FLATLANE_C_API void flatlane_writer_abort(flatlane_writer* w);
/* Copies a message in: one frame if it fits max_frame_payload, else chunks of chunk_size. The
 * timeout bounds each wait for space, not the whole transfer. Drops an uncommitted reservation. */
FLATLANE_C_API int flatlane_writer_write_message(flatlane_writer* w, const uint8_t* data, uint64_t size,
                                                 int64_t timeout_ns);
/* 1 while a live reader is attached, else 0. */
FLATLANE_C_API int flatlane_writer_peer_attached(const flatlane_writer* w);
FLATLANE_C_API void flatlane_writer_stats(const flatlane_writer* w, flatlane_stats* out);
/* Detaches (the reader then sees PEER_CLOSED once it has read everything) and interrupts a
 * blocked call; later calls return CLOSED. Idempotent; the handle stays valid until destroy. */
FLATLANE_C_API void flatlane_writer_close(flatlane_writer* w);
/* Closes if needed and frees the handle. NULL is a no-op. */
FLATLANE_C_API void flatlane_writer_destroy(flatlane_writer* w);

/* ---- reader ----------------------------------------------------------------------------- */

FLATLANE_C_API int flatlane_reader_open(const char* name, const flatlane_options* opts, flatlane_reader** out);
/* Next frame (a whole small message or one chunk of a large one), held until released.
 * Frames may be released in any order. Errors: TIMEOUT, PEER_DEAD (the writer died and all it
 * committed has been read), PEER_CLOSED, CLOSED, CORRUPT. */
FLATLANE_C_API int flatlane_reader_read(flatlane_reader* r, int64_t timeout_ns, flatlane_frame* out);
/* Releases a held frame. INVALID_ARGUMENT for a token that is not held (already released, or
 * from another reader); that is harmless: nothing is released twice. */
FLATLANE_C_API int flatlane_reader_release(flatlane_reader* r, uint64_t token);
/* Next whole message, reassembling chunks. Releases the previous message first. The timeout
 * bounds each wait (time without progress). Errors as read, plus MESSAGE_TOO_LARGE. */
FLATLANE_C_API int flatlane_reader_read_message(flatlane_reader* r, int64_t timeout_ns, flatlane_message* out);
/* Releases the current message early (its ring space, if zero-copy). A stale token is ignored. */
FLATLANE_C_API void flatlane_reader_release_message(flatlane_reader* r, uint64_t token);
FLATLANE_C_API int flatlane_reader_peer_attached(const flatlane_reader* r);
FLATLANE_C_API void flatlane_reader_stats(const flatlane_reader* r, flatlane_stats* out);
FLATLANE_C_API void flatlane_reader_close(flatlane_reader* r);
/* Releases every held frame and message, closes, frees. NULL is a no-op. */
FLATLANE_C_API void flatlane_reader_destroy(flatlane_reader* r);

#ifdef __cplusplus
}
#endif

#endif /* FLATLANE_FLATLANE_C_H */

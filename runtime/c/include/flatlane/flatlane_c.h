/* Flatlane C ABI: the channels, topics and services of the C++ runtime behind plain C types, for
 * language bindings (the C# library P/Invokes it) and C programs.
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

/* Bumped when a struct or signature below changes incompatibly, or when entry points a binding
 * needs are added (2: in-place duplex; 3: flatlane_writer_try_reserve; 4: the writer's fast path; 5: the reader's fast path, flatlane_thread_identity). */
#define FLATLANE_C_ABI_VERSION 5

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
/* Who the calling thread is, in a form a binding can check without a thread-local lookup (the
 * C# endpoint gate does, per call): its stack [*stack_lo, *stack_lo + *stack_size), and *alive, a
 * word that reads nonzero until the thread exits (a pthread key destructor zeroes it before the
 * stack is freed; the word itself is never freed). Stacks of live threads never overlap, so "the
 * address of my local lies in that stack and *alive != 0" holds for this thread only, even after
 * it exited and its stack memory went to new threads. OK, or INVALID_ARGUMENT if the system
 * cannot tell (then *stack_lo = *stack_size = 0, *alive = NULL). */
FLATLANE_C_API int flatlane_thread_identity(uint64_t* stack_lo, uint64_t* stack_size, const uint32_t** alive);
/* Removes /dev/shm/flatlane.<name>; mappings stay valid. Returns OK, NOT_FOUND or an error. */
FLATLANE_C_API int flatlane_unlink(const char* name);

/* ---- writer ----------------------------------------------------------------------------- */

/* Opens or creates the channel and claims its writer role. opts may be NULL (defaults). */
FLATLANE_C_API int flatlane_writer_open(const char* name, const flatlane_options* opts, flatlane_writer** out);
/* Writable region of exactly n bytes inside the ring, 16-byte aligned; waits for space up to
 * timeout_ns. At most one reservation is outstanding; a new reserve drops an uncommitted one.
 * Errors: MESSAGE_TOO_LARGE (n > max_frame_payload), TIMEOUT, PEER_DEAD, PEER_CLOSED, CLOSED. */
FLATLANE_C_API int flatlane_writer_reserve(flatlane_writer* w, uint64_t n, int64_t timeout_ns, uint8_t** out_ptr);
/* As flatlane_writer_reserve with a zero timeout, but it does not ask the reader to publish its
 * releases (`demand`, PROTOCOL.md 8.5) and checks no peer: the poll to make before a blocking
 * flatlane_writer_reserve. Errors: MESSAGE_TOO_LARGE, TIMEOUT, CLOSED, CORRUPT. */
FLATLANE_C_API int flatlane_writer_try_reserve(flatlane_writer* w, uint64_t n, uint8_t** out_ptr);
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

/* The writer's cursor (runtime/cpp/include/flatlane/channel.hpp, detail::WriterCursor): private
 * to the writing thread, never in shared memory. */
typedef struct flatlane_writer_cursor {
  uint64_t write_pos;        /* where the next record starts */
  uint64_t cached_read_pos;  /* the reader's position as last seen */
  uint64_t seq;              /* last frame sequence number used */
  uint64_t messages;         /* counters, stored to the endpoint block after each commit */
  uint64_t bytes;
  uint64_t frame_pos;        /* header position of the open reservation (after any wrap padding) */
  uint64_t reserved_n;       /* its size */
  uint32_t reserved;         /* 1 while a reservation is open */
  uint32_t demand_raised;    /* 1: the writer may have set the space event's demand word */
} flatlane_writer_cursor;

/* Everything a binding needs to run reserve and commit itself, following docs/PROTOCOL.md 6.2
 * and 8.1 to the letter, instead of calling flatlane_writer_reserve/commit per frame (the C#
 * Writer does). `cursor` is the native writer's own cursor, not a copy: the binding advances it
 * in place, and every call above keeps working on the same state, so a binding handles the plain
 * case itself and leaves the rest (waiting for space, a closed writer, chunked messages, a
 * commit_tail gap) to them. Single-threaded like the writer; valid until flatlane_writer_destroy.
 * The shared words are atomics: load and store them with the orders PROTOCOL.md gives. */
typedef struct flatlane_writer_fast_path {
  uint8_t* ring;                /* ring base; a position p is at ring + (p & (capacity - 1)) */
  uint64_t capacity;            /* ring bytes, a power of two */
  uint32_t max_frame_payload;
  uint32_t epoch_flags;         /* this writer's epoch, already shifted into frame-flag bits 16-31 */
  flatlane_writer_cursor* cursor;
  uint64_t* pos;                /* this writer's endpoint block: pos, count, messages, bytes */
  uint64_t* count;
  uint64_t* messages;
  uint64_t* bytes;
  const uint64_t* reader_pos;   /* the reader's endpoint block: pos */
  const uint32_t* data_waiters; /* the data eventcount's `waiters` (notify after each commit) */
  uint32_t* space_demand;       /* the space eventcount's `demand` (cleared once space is found) */
  const uint8_t* closed;        /* nonzero once flatlane_writer_close ran */
} flatlane_writer_fast_path;

FLATLANE_C_API void flatlane_writer_get_fast_path(flatlane_writer* w, flatlane_writer_fast_path* out);
/* The slow half of a notify (PROTOCOL.md 8.1): bumps the data eventcount and wakes its sleepers.
 * Call it after a commit's full fence found data_waiters nonzero. */
FLATLANE_C_API void flatlane_writer_wake_reader(flatlane_writer* w);

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
/* Releases every held frame and message (frames a binding delivered through the fast path below
 * included), closes, frees. NULL is a no-op. */
FLATLANE_C_API void flatlane_reader_destroy(flatlane_reader* r);

/* The reader's consumer-private state (runtime/cpp/include/flatlane/channel.hpp,
 * detail::ReaderCursor): private to the reading thread, never in shared memory. */
typedef struct flatlane_reader_cursor {
  uint64_t cursor;             /* next record to deliver */
  uint64_t release_pos;        /* everything before is free */
  uint64_t published_release;  /* last value stored to the shared read position */
  uint64_t publish_batch;      /* publish at least this often while more is to read */
  uint64_t cached_write_pos;   /* never decreases; may run ahead of the writer's position */
  uint64_t pos_floor;          /* the writer's position may not fall below this */
  uint64_t fast_commit_start;  /* commit of the last record found through its commit word */
  uint64_t fast_prev_end;
  uint64_t expected_seq;       /* 0: resynchronise on the next frame */
  uint64_t held;               /* frames delivered and not released */
  uint64_t released_frames;
  uint32_t writer_epoch;       /* epoch seen in the last frame */
  uint8_t epoch_known;
  uint8_t fast_prev_padding;
  uint8_t corrupt;             /* sticky */
  uint8_t reserved0;
} flatlane_reader_cursor;

/* The reader's counterpart of flatlane_writer_fast_path: a binding reads and releases plain
 * frames itself, following docs/PROTOCOL.md 6.4-6.5 to the letter, on the native reader's own
 * cursor, and leaves everything else (nothing visible yet, padding, chunks, a new writer epoch, a
 * frame that fails validation, waiting) to flatlane_reader_read, which sees the same state. A
 * frame it delivered is identified by its ring position and extent, not by a token of the slot
 * table; flatlane_reader_destroy releases those too. Valid until flatlane_reader_destroy. */
typedef struct flatlane_reader_fast_path {
  const uint8_t* ring;           /* ring base; a position p is at ring + (p & (capacity - 1)) */
  uint64_t capacity;
  uint32_t max_frame_payload;
  uint32_t reserved0;
  flatlane_reader_cursor* cursor;
  uint64_t* pos;                 /* this reader's endpoint block: pos (the release position), count */
  uint64_t* count;
  const uint32_t* space_waiters; /* the space eventcount: waiters, demand (PROTOCOL.md 5.6, 8.5) */
  const uint32_t* space_demand;
  const uint8_t* closed;         /* nonzero once flatlane_reader_close ran */
} flatlane_reader_fast_path;

FLATLANE_C_API void flatlane_reader_get_fast_path(flatlane_reader* r, flatlane_reader_fast_path* out);
/* The slow half of notifying the space eventcount after publishing a release position. */
FLATLANE_C_API void flatlane_reader_wake_writer(flatlane_reader* r);

/* ---- topics: publish/subscribe and push/pull (docs/PROTOCOL.md section 14) --------------------
 *
 * Many publishers, many subscribers. Publishers loan a slot of their pool, write in place and
 * publish; every attached subscriber (fan_out) or exactly one of them (work_queue) gets a
 * zero-copy sample that stays valid until released. Threading as for channels: one thread at a
 * time per publisher, and per subscriber together with its samples (receive, release, stats must
 * not overlap; *_close must not overlap them either, because the C++ topic endpoints clean up
 * their queues on close). A binding that releases from other threads serialises itself (the C#
 * one queues such releases). Hot calls (loan, publish, publish_tail, discard, send, receive,
 * release, stats, subscriber_count) do not allocate; a subscriber's table of held samples starts
 * with room for 64 and grows only when more are held than ever before. */

typedef enum flatlane_distribution {
  FLATLANE_DIST_FAN_OUT = 0,   /* every attached subscriber gets every message */
  FLATLANE_DIST_WORK_QUEUE = 1 /* each message goes to exactly one subscriber; waits while none is attached */
} flatlane_distribution;

typedef enum flatlane_subscriber_mode {
  FLATLANE_SUB_DROP_OLDEST = 0,    /* never slows publishers; a full queue loses its oldest message */
  FLATLANE_SUB_BLOCK_PUBLISHER = 1 /* publishers wait for queue space up to their block_timeout */
} flatlane_subscriber_mode;

/* Topic options (flatlane::TopicOptions). Call flatlane_topic_options_init first. (create) fields
 * only matter to the member that creates the segment. No implicit padding: the field order keeps
 * every member naturally aligned, so bindings can mirror it field for field. */
typedef struct flatlane_topic_options {
  uint32_t struct_size;      /* sizeof(flatlane_topic_options) */
  int32_t open_mode;         /* flatlane_open_mode; default CREATE_OR_OPEN */
  uint32_t slot_size;        /* (create) largest message, bytes (rounded up to 64); 4096 */
  uint32_t slot_count;       /* (create) slots per publisher; 64 */
  uint32_t max_publishers;   /* (create) 4 */
  uint32_t max_subscribers;  /* (create) 32 */
  uint32_t queue_depth;      /* (create) messages waiting per subscriber and publisher (power of two); 32 */
  uint32_t max_held;         /* (create) samples a subscriber may hold at once; 16 */
  uint32_t history;          /* (create) messages each publisher retains for late joiners; 0 */
  int32_t distribution;      /* (create) flatlane_distribution; FAN_OUT */
  uint32_t file_mode;        /* (create) 0600 */
  int32_t wait_strategy;     /* flatlane_wait_strategy; SPIN_THEN_SLEEP */
  int64_t spin_budget_ns;
  int64_t liveness_interval_ns;
  const char* type_name;     /* NULL or "" = untyped */
  uint64_t type_hash;
  int32_t unlink_on_close;   /* nonzero: the last member to leave removes the name; 1 */
  int32_t subscriber_mode;   /* subscribers: flatlane_subscriber_mode; DROP_OLDEST */
  uint32_t history_request;  /* subscribers: retained messages to receive first, per publisher; 0 */
  uint32_t reserved0;        /* must be 0 */
  int64_t block_timeout_ns;  /* publishers: wait for a block_publisher queue / a free slot; 1 s */
} flatlane_topic_options;

typedef struct flatlane_publisher_counters {
  uint64_t messages;     /* published */
  uint64_t bytes;
  uint64_t no_receiver;  /* published while no subscriber was attached */
  uint64_t timeouts;     /* deliveries abandoned after block_timeout */
  uint32_t subscribers;  /* attached now */
  uint32_t free_slots;   /* in this publisher's pool */
  uint32_t slot_count;
  uint32_t max_message;  /* the slot size */
  uint64_t lost;         /* work queue: messages held by subscribers that died */
} flatlane_publisher_counters;

typedef struct flatlane_subscriber_counters {
  uint64_t received;
  uint64_t bytes;
  uint64_t dropped;  /* lost: oldest dropped on a full queue, or a publisher timed out */
  uint32_t held;     /* samples held now */
  uint32_t queued;   /* messages waiting now */
} flatlane_subscriber_counters;

/* A received message: a zero-copy view of the publisher's slot, valid until released. */
typedef struct flatlane_sample {
  const uint8_t* data;
  uint64_t size;
  uint64_t seq;              /* the publisher's sequence number */
  uint64_t token;            /* pass to flatlane_subscriber_release; never 0 for a held sample */
  uint32_t publisher;        /* publisher block index */
  uint32_t publisher_epoch;  /* that publisher's attach epoch */
} flatlane_sample;

typedef struct flatlane_publisher flatlane_publisher;
typedef struct flatlane_subscriber flatlane_subscriber;

FLATLANE_C_API void flatlane_topic_options_init(flatlane_topic_options* opts);

/* Joins the topic as a publisher. opts may be NULL. Errors: BUSY (max_publishers attached), ... */
FLATLANE_C_API int flatlane_publisher_open(const char* name, const flatlane_topic_options* opts,
                                           flatlane_publisher** out);
/* A free slot of n bytes (n <= max_message); waits for one up to timeout_ns. A new loan discards
 * an unpublished one. Errors: MESSAGE_TOO_LARGE, TIMEOUT, CLOSED. */
FLATLANE_C_API int flatlane_publisher_loan(flatlane_publisher* p, uint64_t n, int64_t timeout_ns, uint8_t** out_ptr,
                                           uint64_t* out_capacity);
/* Publishes the first (publish) or last (publish_tail) `used` bytes of the loan. INVALID_ARGUMENT
 * without a loan or with used > n (the loan stays). TIMEOUT: a block_publisher subscriber had no
 * queue space within block_timeout (the others got the message; the loan is consumed). */
FLATLANE_C_API int flatlane_publisher_publish(flatlane_publisher* p, uint64_t used);
FLATLANE_C_API int flatlane_publisher_publish_tail(flatlane_publisher* p, uint64_t used);
/* Gives the loaned slot back unpublished. No-op without a loan. */
FLATLANE_C_API void flatlane_publisher_discard(flatlane_publisher* p);
/* loan + copy + publish. */
FLATLANE_C_API int flatlane_publisher_send(flatlane_publisher* p, const uint8_t* data, uint64_t size,
                                           int64_t timeout_ns);
FLATLANE_C_API uint32_t flatlane_publisher_subscriber_count(flatlane_publisher* p);
FLATLANE_C_API void flatlane_publisher_stats(flatlane_publisher* p, flatlane_publisher_counters* out);
/* Leaves the topic; later calls return CLOSED. Idempotent. */
FLATLANE_C_API void flatlane_publisher_close(flatlane_publisher* p);
FLATLANE_C_API void flatlane_publisher_destroy(flatlane_publisher* p);

FLATLANE_C_API int flatlane_subscriber_open(const char* name, const flatlane_topic_options* opts,
                                            flatlane_subscriber** out);
/* Next message from any publisher. Errors: TIMEOUT; BUSY (max_held samples held); PEER_DEAD /
 * PEER_CLOSED (every publisher that attached died / left and nothing is queued); CLOSED; CORRUPT. */
FLATLANE_C_API int flatlane_subscriber_receive(flatlane_subscriber* s, int64_t timeout_ns, flatlane_sample* out);
/* Releases a held sample (also after close). INVALID_ARGUMENT for a token that is not held. */
FLATLANE_C_API int flatlane_subscriber_release(flatlane_subscriber* s, uint64_t token);
FLATLANE_C_API void flatlane_subscriber_stats(flatlane_subscriber* s, flatlane_subscriber_counters* out);
/* Leaves the topic (held samples stay valid until released or destroy). Idempotent. */
FLATLANE_C_API void flatlane_subscriber_close(flatlane_subscriber* s);
/* Releases every held sample, closes, frees. NULL is a no-op. */
FLATLANE_C_API void flatlane_subscriber_destroy(flatlane_subscriber* s);

/* ---- services: request/reply (docs/PROTOCOL.md section 15) ---------------------------------
 *
 * One server, many clients; replies correlated by request id, several replies per request
 * (streaming: `more`). Threading: one thread at a time per server / client, together with its
 * requests / replies, and close included (the C++ endpoints tear down their channels on close).
 * Hot calls do not allocate, except the server's first reply to a new client, which opens that
 * client's reply channel. */

typedef struct flatlane_service_options {
  uint32_t struct_size;           /* sizeof(flatlane_service_options) */
  int32_t open_mode;              /* flatlane_open_mode; CREATE_OR_OPEN */
  uint32_t max_clients;           /* attached at once (at most 64); 32 */
  uint32_t max_request;           /* bytes of request payload; 4096 */
  uint32_t request_slots;         /* per client; 64 */
  uint32_t queue_depth;           /* requests waiting per client; 32 */
  uint64_t reply_ring;            /* bytes of each client's reply ring; 64 KiB */
  const char* request_type_name;  /* NULL or "" = untyped */
  uint64_t request_type_hash;
  const char* reply_type_name;
  uint64_t reply_type_hash;
  int32_t wait_strategy;          /* flatlane_wait_strategy */
  int32_t reserved0;              /* must be 0 */
  int64_t spin_budget_ns;
  int64_t liveness_interval_ns;
  int64_t send_timeout_ns;        /* client: wait for a free slot or server queue space; 1 s */
} flatlane_service_options;

typedef struct flatlane_server_counters {
  uint64_t requests;
  uint64_t replies;
  uint64_t dropped_replies;  /* client gone, or its reply ring full */
  uint32_t clients;          /* reply channels open now */
  uint32_t reserved0;
} flatlane_server_counters;

/* A request as the server holds it (zero-copy, after the envelope). */
typedef struct flatlane_request {
  const uint8_t* data;
  uint64_t size;
  uint64_t id;      /* the client's request id */
  uint64_t token;   /* pass to release / prepare_reply / reply */
  uint32_t client;  /* client index */
  uint32_t reserved0;
} flatlane_request;

/* A reply as the client holds it (zero-copy in its reply ring, after the envelope). */
typedef struct flatlane_reply {
  const uint8_t* data;
  uint64_t size;
  uint64_t id;
  uint64_t token;  /* pass to flatlane_client_release */
  int32_t more;    /* 1: another reply to the same request follows */
  int32_t reserved0;
} flatlane_reply;

typedef struct flatlane_server flatlane_server;
typedef struct flatlane_client flatlane_client;

FLATLANE_C_API void flatlane_service_options_init(flatlane_service_options* opts);

FLATLANE_C_API int flatlane_server_open(const char* name, const flatlane_service_options* opts, flatlane_server** out);
/* Next request, held until released. Errors: TIMEOUT, BUSY (too many held), CLOSED, ... */
FLATLANE_C_API int flatlane_server_receive(flatlane_server* s, int64_t timeout_ns, flatlane_request* out);
/* Releases a held request. INVALID_ARGUMENT for a token that is not held (harmless). */
FLATLANE_C_API int flatlane_server_release(flatlane_server* s, uint64_t token);
/* Zero-copy reply to a held request: n bytes in the client's reply ring, then commit or abort.
 * Errors: INVALID_ARGUMENT (stale token), MESSAGE_TOO_LARGE, PEER_CLOSED/PEER_DEAD (client gone),
 * TIMEOUT (its ring is full: the reply is dropped and counted). */
FLATLANE_C_API int flatlane_server_prepare_reply(flatlane_server* s, uint64_t request_token, uint64_t n,
                                                 uint8_t** out_ptr);
FLATLANE_C_API int flatlane_server_commit_reply(flatlane_server* s, uint64_t used, int32_t more);
FLATLANE_C_API int flatlane_server_commit_reply_tail(flatlane_server* s, uint64_t used, int32_t more);
FLATLANE_C_API void flatlane_server_abort_reply(flatlane_server* s);
/* Copies a reply to a held request. */
FLATLANE_C_API int flatlane_server_reply(flatlane_server* s, uint64_t request_token, const uint8_t* data,
                                         uint64_t size, int32_t more);
FLATLANE_C_API void flatlane_server_stats(flatlane_server* s, flatlane_server_counters* out);
FLATLANE_C_API void flatlane_server_close(flatlane_server* s);
FLATLANE_C_API void flatlane_server_destroy(flatlane_server* s);

FLATLANE_C_API int flatlane_client_open(const char* name, const flatlane_service_options* opts, flatlane_client** out);
/* Zero-copy request: n bytes of a request slot; then send_prepared(_tail) gives the request id. */
FLATLANE_C_API int flatlane_client_prepare(flatlane_client* c, uint64_t n, uint8_t** out_ptr);
FLATLANE_C_API int flatlane_client_send_prepared(flatlane_client* c, uint64_t used, uint64_t* out_id);
FLATLANE_C_API int flatlane_client_send_prepared_tail(flatlane_client* c, uint64_t used, uint64_t* out_id);
FLATLANE_C_API void flatlane_client_abort_prepared(flatlane_client* c);
FLATLANE_C_API uint64_t flatlane_client_max_request(flatlane_client* c);
FLATLANE_C_API int flatlane_client_send(flatlane_client* c, const uint8_t* data, uint64_t size, uint64_t* out_id);
/* Next reply to request `id` (replies to other ids are skipped), held until released. Errors:
 * TIMEOUT, PEER_DEAD (the server died), PEER_CLOSED (it left), CLOSED. */
FLATLANE_C_API int flatlane_client_receive(flatlane_client* c, uint64_t id, int64_t timeout_ns, flatlane_reply* out);
FLATLANE_C_API int flatlane_client_release(flatlane_client* c, uint64_t token);
/* send + receive. */
FLATLANE_C_API int flatlane_client_call(flatlane_client* c, const uint8_t* data, uint64_t size, int64_t timeout_ns,
                                        flatlane_reply* out);
FLATLANE_C_API void flatlane_client_close(flatlane_client* c);
FLATLANE_C_API void flatlane_client_destroy(flatlane_client* c);

/* ---- in-place duplex (docs/PROTOCOL.md section 16) -------------------------------------------
 *
 * One client and one server per channel. The client reserves a frame, writes a request into it
 * and commits; the server gets a WRITABLE view of the frame, modifies the request in place (or
 * writes its answer anywhere in the frame) and responds with the answer's offset and size, or
 * rejects it. The client receives responses in request order (seq correlates them) and may hold
 * several, releasing them in any order; a frame's space returns to the ring only once its
 * response is released. Options: flatlane_options (ring_capacity, max_frame_payload, file_mode,
 * open_mode, wait, type, unlink_on_close; chunk_size and max_message_size are ignored).
 * Held requests and responses are kept in slot tables and named by tokens, as a reader's frames:
 * a stale or copied token fails with INVALID_ARGUMENT. A held request that is destroyed unanswered
 * (reject, or destroy of the server) is answered rejected. Threading: one thread at a time per
 * endpoint, together with its requests / responses and close. Hot calls (reserve, commit,
 * commit_tail, abort, receive, release, respond, reject, stats, outstanding) do not allocate once
 * the tables are large enough (64 held at once to start with). */

typedef struct flatlane_duplex_client flatlane_duplex_client;
typedef struct flatlane_duplex_server flatlane_duplex_server;

typedef struct flatlane_duplex_stats {
  uint64_t requests;         /* client: sent; server: received */
  uint64_t responses;        /* client: received; server: sent (rejections included) */
  uint64_t rejected;         /* client: came back rejected; server: rejected */
  uint64_t bytes;            /* client: request bytes; server: response bytes */
  uint64_t outstanding;      /* client: sent, response not received; server: received, not answered */
  uint64_t occupancy_bytes;  /* ring bytes in use */
  uint64_t capacity_bytes;   /* ring capacity */
  uint32_t max_frame_payload;/* largest reservation */
  uint32_t reserved0;
} flatlane_duplex_stats;

/* A response held by the client: the request's frame as the server left it. `data` (writable)
 * stays valid until released with `token`. */
typedef struct flatlane_duplex_response {
  uint8_t* data;      /* the answer bytes in the frame (NULL / size 0 when rejected) */
  uint64_t size;
  uint64_t seq;       /* the seq commit returned for the request */
  uint64_t token;     /* pass to flatlane_duplex_client_release; never 0 */
  int32_t rejected;   /* 1: the server rejected the request (or died holding it) */
  int32_t reserved0;
} flatlane_duplex_response;

/* A request held by the server: a writable view of the client's frame. */
typedef struct flatlane_duplex_request {
  uint8_t* payload;         /* the whole frame payload: the answer may use all `capacity` bytes */
  uint64_t capacity;
  uint64_t request_offset;  /* the request is payload[request_offset, request_offset + request_size) */
  uint64_t request_size;
  uint64_t seq;
  uint64_t token;           /* pass to respond / reject; never 0 */
} flatlane_duplex_request;

/* Opens or creates the channel and claims its client role. opts may be NULL. */
FLATLANE_C_API int flatlane_duplex_client_open(const char* name, const flatlane_options* opts,
                                               flatlane_duplex_client** out);
FLATLANE_C_API uint32_t flatlane_duplex_client_max_frame_payload(const flatlane_duplex_client* c);
/* Writable frame of n bytes, 32-byte aligned. A ring full of outstanding or held responses fails
 * at once with TIMEOUT (receive and release first); only frames a previous client left are waited
 * for. A new reserve drops an uncommitted one. Errors: MESSAGE_TOO_LARGE, TIMEOUT, CLOSED. */
FLATLANE_C_API int flatlane_duplex_client_reserve(flatlane_duplex_client* c, uint64_t n, int64_t timeout_ns,
                                                  uint8_t** out_ptr);
/* Publishes the first (commit) or last (commit_tail) `used` bytes of the reservation as the
 * request; *out_seq (may be NULL) gets its seq. INVALID_ARGUMENT without a reservation or with
 * used > n (the reservation stays). */
FLATLANE_C_API int flatlane_duplex_client_commit(flatlane_duplex_client* c, uint64_t used, uint64_t* out_seq);
FLATLANE_C_API int flatlane_duplex_client_commit_tail(flatlane_duplex_client* c, uint64_t used, uint64_t* out_seq);
FLATLANE_C_API void flatlane_duplex_client_abort(flatlane_duplex_client* c);
/* The response to the oldest request not yet received, held until released. Errors: TIMEOUT,
 * PEER_DEAD, PEER_CLOSED, CLOSED, CORRUPT, INVALID_ARGUMENT (nothing outstanding). */
FLATLANE_C_API int flatlane_duplex_client_receive(flatlane_duplex_client* c, int64_t timeout_ns,
                                                  flatlane_duplex_response* out);
/* Releases a held response (its frame's space). INVALID_ARGUMENT for a token not held. */
FLATLANE_C_API int flatlane_duplex_client_release(flatlane_duplex_client* c, uint64_t token);
/* Requests sent whose response was not received yet. */
FLATLANE_C_API uint64_t flatlane_duplex_client_outstanding(const flatlane_duplex_client* c);
FLATLANE_C_API uint32_t flatlane_duplex_client_held(const flatlane_duplex_client* c);
FLATLANE_C_API void flatlane_duplex_client_stats(const flatlane_duplex_client* c, flatlane_duplex_stats* out);
FLATLANE_C_API int flatlane_duplex_client_peer_attached(const flatlane_duplex_client* c);
FLATLANE_C_API void flatlane_duplex_client_close(flatlane_duplex_client* c);
/* Releases every held response, closes, frees. NULL is a no-op. */
FLATLANE_C_API void flatlane_duplex_client_destroy(flatlane_duplex_client* c);

FLATLANE_C_API int flatlane_duplex_server_open(const char* name, const flatlane_options* opts,
                                               flatlane_duplex_server** out);
FLATLANE_C_API uint32_t flatlane_duplex_server_max_frame_payload(const flatlane_duplex_server* s);
/* Next request, held (writable) until answered. Errors: TIMEOUT, PEER_DEAD / PEER_CLOSED (the
 * client went away and everything it sent was received), CLOSED, CORRUPT. */
FLATLANE_C_API int flatlane_duplex_server_receive(flatlane_duplex_server* s, int64_t timeout_ns,
                                                  flatlane_duplex_request* out);
/* Answers with `size` bytes at `offset` within the frame payload (the request's own place:
 * request_offset, request_size). INVALID_ARGUMENT for a token not held; MESSAGE_TOO_LARGE if the
 * range leaves the frame (the request stays held). After success the frame is the client's. */
FLATLANE_C_API int flatlane_duplex_server_respond(flatlane_duplex_server* s, uint64_t token, uint64_t offset,
                                                  uint64_t size);
/* Answers rejected. INVALID_ARGUMENT for a token not held. */
FLATLANE_C_API int flatlane_duplex_server_reject(flatlane_duplex_server* s, uint64_t token);
/* Requests received and not answered yet. */
FLATLANE_C_API uint64_t flatlane_duplex_server_outstanding(const flatlane_duplex_server* s);
FLATLANE_C_API void flatlane_duplex_server_stats(const flatlane_duplex_server* s, flatlane_duplex_stats* out);
FLATLANE_C_API int flatlane_duplex_server_peer_attached(const flatlane_duplex_server* s);
FLATLANE_C_API void flatlane_duplex_server_close(flatlane_duplex_server* s);
/* Rejects every held request, closes, frees. NULL is a no-op. */
FLATLANE_C_API void flatlane_duplex_server_destroy(flatlane_duplex_server* s);

#ifdef __cplusplus
}
#endif

#endif /* FLATLANE_FLATLANE_C_H */

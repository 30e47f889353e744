// The few Linux calls behind the shared-memory transport that Swift cannot make itself:
// C11 atomics on memory another process maps, a sealed memfd, and a file descriptor passed
// over a Unix socket (SCM_RIGHTS, whose CMSG_* macros Swift does not import). Only
// ConvoyInterop imports this module.
#ifndef CONVOY_SHARED_MEMORY_H
#define CONVOY_SHARED_MEMORY_H

#include <stddef.h>
#include <stdint.h>

// Acquire loads and release stores of a 64-bit counter at `address` (8-byte aligned).
uint64_t cvy_load_acquire_u64(const void *address);
void cvy_store_release_u64(void *address, uint64_t value);
// Sequentially consistent load, store and exchange of a 32-bit flag, and a full fence: the
// "I am about to sleep" / "did the reader sleep?" handshake needs store-load ordering.
uint32_t cvy_load_u32(const void *address);
void cvy_store_u32(void *address, uint32_t value);
uint32_t cvy_exchange_u32(void *address, uint32_t value);
void cvy_fence(void);

// A memfd of `size` bytes sealed against shrinking and growing (so a peer holding it cannot
// make our mapping fault), close-on-exec. Returns the fd, or -1 with errno set.
int cvy_sealed_memfd(const char *name, uint64_t size);
// Whether `fd` is sealed against shrinking (1), not (0), or cannot be asked (-1).
int cvy_is_shrink_sealed(int fd);

// The most descriptors one packet carries.
#define CVY_MAX_FDS 4

// Sends `length` bytes and the `count` (at most CVY_MAX_FDS) descriptors `fds` in one packet.
// Returns the bytes sent or -1 with errno set. Never blocks (MSG_DONTWAIT), never raises
// SIGPIPE.
long cvy_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count);
// Receives one packet of at most `capacity` bytes and at most CVY_MAX_FDS descriptors into
// `fds` (`*count` of them; more are closed). Returns the bytes received, 0 at end of stream,
// -1 with errno set. `*truncated` is 1 when the packet or its control data did not fit.
long cvy_receive_with_fds(int socket, void *bytes, size_t capacity, int *fds, int *count, int *truncated);

// An eventfd (non-blocking, close-on-exec), or -1 with errno set.
int cvy_eventfd(void);
// Whether `fd` is an eventfd (1) or not (0); makes it non-blocking when it is.
int cvy_adopt_eventfd(int fd);
// Adds 1 to an eventfd's counter (never blocks); takes all of it (0 when it was 0).
void cvy_eventfd_signal(int fd);
void cvy_eventfd_drain(int fd);

// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (a GNU extension Swift does not see).
int cvy_accept(int socket);

// The user id of the process at the other end of a connected Unix socket (SO_PEERCRED).
int cvy_peer_uid(int socket, uint32_t *uid);

#endif

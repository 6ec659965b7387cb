/*
 * payload.c - payload fds are read-only for workers.
 *
 * The daemon hands the caller's fd to the worker without copying, read-only
 * (commands.c reopens an O_RDWR one).  But a worker can reopen it read-write
 * through /proc/self/fd/N, and a memfd's inode is mode 0777: only seals keep
 * it from writing.  So a memfd is sealed here (F_SEAL_FUTURE_WRITE, else
 * F_SEAL_WRITE, with F_SEAL_SHRINK and F_SEAL_GROW), and one that can no
 * longer take seals (made without MFD_ALLOW_SEALING, or F_SEAL_SEAL'd) must
 * carry a write seal already.  A regular file is the sandbox's to guard.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "payload.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

/* Is fd a memfd?  Its /proc link names it "/memfd:NAME (deleted)". */
static bool is_memfd(int fd)
{
	char path[64], link[16];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link));
	return n >= 7 && memcmp(link, "/memfd:", 7) == 0;
}

const char *payload_seal(int fd)
{
	static char why[200];
	int seals;

	if (!is_memfd(fd))
		return NULL;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0) {
		snprintf(why, sizeof(why), "payload_fd: cannot read the memfd's seals: %s",
			 strerror(errno));
		return why;
	}
	if (seals & F_SEAL_SEAL) {
		if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))
			return NULL;
		return "payload_fd: the memfd is not sealed against writes and takes no seals "
		       "(made without MFD_ALLOW_SEALING, or F_SEAL_SEAL set): the worker could "
		       "write it; seal it with F_SEAL_WRITE, or make it with MFD_ALLOW_SEALING";
	}
	/* F_SEAL_FUTURE_WRITE works despite the caller's writable mappings; F_SEAL_WRITE
	 * (before Linux 5.1) only without them. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) == 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) == 0)
		return NULL;
	int e = errno;
	snprintf(why, sizeof(why), "payload_fd: cannot seal the memfd against writes: %s%s",
		 strerror(e), e == EBUSY ? " (it has writable shared mappings)" : "");
	return why;
}

/*
 * payload.h - payload fds are the caller's bytes: a worker reads them, never
 * writes them (DESIGN.md, "Payload and result bytes").
 */
#ifndef CORRAL_PAYLOAD_H
#define CORRAL_PAYLOAD_H

/*
 * Make a payload fd (a regular file or memfd, checked already) safe to hand
 * to a worker: a memfd gets sealed against writes, growing and shrinking
 * where it allows seals.  NULL when fine, else why it is refused (a message
 * for bad_request, valid until the next call).  A file is left to the
 * sandbox (Landlock: workers write only under their tmpfs paths).
 */
const char *payload_seal(int fd);

#endif

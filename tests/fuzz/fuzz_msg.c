/*
 * fuzz_msg.c - the message decoders and the typed reader on arbitrary bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every decoder on the same bytes; a decoded message must re-encode to the same bytes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[FRAME_MAX_PAYLOAD + 64];
	struct msg_hello h;
	struct msg_call c;
	struct msg_result r;
	struct msg_reader rd;

	if (msg_hello_decode(data, size, &h) == 0 &&
	    (msg_hello_encode(out, sizeof(out), &h) != (long)size || memcmp(out, data, size)))
		__builtin_trap();
	if (msg_call_decode(data, size, &c) == 0 &&
	    (msg_call_encode(out, sizeof(out), &c) != (long)size || memcmp(out, data, size)))
		__builtin_trap();
	if (msg_result_decode(data, size, &r) == 0) {
		size_t n = strlen(r.message);

		if (n > RESULT_MAX_MSG || r.status > RESULT_STATUS_MAX ||
		    (const uint8_t *)r.message < data ||
		    (const uint8_t *)r.message + n >= data + size)
			__builtin_trap();
		if (msg_result_encode(out, sizeof(out), &r) != (long)size ||
		    memcmp(out, data, size))
			__builtin_trap();
	}

	/* A reader driven by the input: first byte picks the field sequence. */
	if (size == 0)
		return 0;
	msg_reader_init(&rd, data + 1, size - 1);
	for (unsigned op = data[0], i = 0; i < 4; i++, op >>= 2) {
		switch (op & 3) {
		case 0:
			msg_get_u32(&rd);
			break;
		case 1:
			msg_get_u64(&rd);
			break;
		default: {
			const char *s = msg_get_str(&rd, (op & 1) ? SIZE_MAX : 16);

			if (s != NULL && (strlen(s) > size || rd.off > rd.len))
				__builtin_trap();
			break;
		}
		}
		if (rd.off > rd.len)
			__builtin_trap();
	}
	(void)msg_reader_end(&rd);
	return 0;
}

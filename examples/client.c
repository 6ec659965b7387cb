/*
 * client.c - a complete libcorral program: connect to corrald, call the
 * sha256 worker type with a file's bytes, print the digest.
 *
 *   cc client.c $(pkg-config --cflags --libs corral) -o corral-sha256
 *   corral-sha256 FILE
 *
 * The socket is $CORRAL_SOCKET, else the default path.  The file goes to the
 * worker as its fd: never copied, never read by this program.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <corral/client.h>

int main(int argc, char **argv)
{
	struct corral *c;
	struct corral_result *res;
	struct corral_error err;
	size_t len;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], strerror(errno));
		return 1;
	}
	if (corral_connect(NULL, &c, &err) != CORRAL_OK) {
		fprintf(stderr, "%s: %s\n", argv[0], err.message);
		return 1;
	}
	struct corral_call_opts opts = {.payload_fd = fd};
	if (corral_call(c, "sha256", NULL, 0, &opts, &res, &err) != CORRAL_OK) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], corral_code_name(err.code), err.message);
		corral_close(c);
		return 1;
	}
	const char *digest = corral_result_data(res, &len);
	printf("%.*s\n", (int)len, digest);
	corral_result_free(res);
	corral_close(c);
	close(fd);
	return 0;
}

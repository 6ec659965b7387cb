/*
 * test_systemd.c - corrald under systemd's protocols, played for real by the
 * test: the notify socket (READY=1, STATUS=, WATCHDOG=1, STOPPING=1) and
 * socket activation (LISTEN_FDS).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static char sock_path[128];

/* A datagram socket for NOTIFY_SOCKET. */
static int notify_socket(char *path, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(path, len, "%s/notify", dir);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Wait (bounded) for a notify datagram containing want; true when seen. */
static bool wait_notify(int fd, const char *want, int timeout_ms)
{
	char buf[4096];
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) != 1)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, want))
			return true;
	}
	return false;
}

/* Start corrald with extra environment; listen_fd >= 0 goes to fd 3 with LISTEN_*. */
static pid_t start_daemon(const char *const *env, int listen_fd)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (const char *const *e = env; e && *e; e++)
			putenv((char *)*e);
		char logp[128];
		snprintf(logp, sizeof(logp), "%s/log", dir);
		int lf = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (lf >= 0)
			dup2(lf, 2);
		if (listen_fd >= 0) {
			dup2(listen_fd, 3);
			char pidbuf[32];
			snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
			setenv("LISTEN_PID", pidbuf, 1);
			setenv("LISTEN_FDS", "1", 1);
		}
		execl(getenv("CORRALD"), "corrald", "--socket", sock_path, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Connect, send a ping, read the reply line; true when it is ok. */
static bool ping(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sock_path);
	for (int i = 0; i < 200; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			const char req[] = "{\"id\":1,\"cmd\":\"ping\"}\n";
			char buf[4096];
			ssize_t w = write(fd, req, sizeof(req) - 1);
			struct pollfd p = {fd, POLLIN, 0};
			ssize_t n =
			    w > 0 && poll(&p, 1, 5000) == 1 ? read(fd, buf, sizeof(buf) - 1) : -1;
			close(fd);
			if (n <= 0)
				return false;
			buf[n] = '\0';
			return strstr(buf, "\"ok\":true") != NULL;
		}
		close(fd);
		struct pollfd none;
		poll(&none, 0, 10); /* retry bound for the daemon to start listening */
	}
	return false;
}

/* Wait for the daemon's exit; its status. */
static int wait_exit(pid_t pid)
{
	int st;
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		struct pollfd none;
		poll(&none, 0, 10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static void setup(void)
{
	strcpy(dir, "/tmp/corral-sd-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/s.sock", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(notify_ready_status_stopping)
{
	char np[128], env1[200];
	int nfd = notify_socket(np, sizeof(np));
	snprintf(env1, sizeof(env1), "NOTIFY_SOCKET=%s", np);
	const char *env[] = {env1, NULL};
	pid_t pid = start_daemon(env, -1);
	ck_assert_msg(wait_notify(nfd, "READY=1", 10000), "no READY=1");
	ck_assert(ping());
	kill(pid, SIGTERM);
	ck_assert_msg(wait_notify(nfd, "STOPPING=1", 10000), "no STOPPING=1");
	int st = wait_exit(pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(nfd);
}
END_TEST

START_TEST(notify_watchdog)
{
	char np[128], env1[200];
	int nfd = notify_socket(np, sizeof(np));
	snprintf(env1, sizeof(env1), "NOTIFY_SOCKET=%s", np);
	const char *env[] = {env1, "WATCHDOG_USEC=200000", NULL};
	pid_t pid = start_daemon(env, -1);
	ck_assert(wait_notify(nfd, "READY=1", 10000));
	ck_assert_msg(wait_notify(nfd, "WATCHDOG=1", 5000), "no WATCHDOG=1");
	ck_assert_msg(wait_notify(nfd, "WATCHDOG=1", 5000), "no second WATCHDOG=1");
	kill(pid, SIGTERM);
	ck_assert_int_eq(WEXITSTATUS(wait_exit(pid)), 0);
	close(nfd);
}
END_TEST

START_TEST(reload_notifies)
{
	char np[128], env1[200];
	int nfd = notify_socket(np, sizeof(np));
	snprintf(env1, sizeof(env1), "NOTIFY_SOCKET=%s", np);
	const char *env[] = {env1, NULL};
	pid_t pid = start_daemon(env, -1);
	ck_assert(wait_notify(nfd, "READY=1", 10000));
	kill(pid, SIGHUP);
	ck_assert_msg(wait_notify(nfd, "RELOADING=1", 10000), "no RELOADING=1");
	ck_assert(ping());
	kill(pid, SIGTERM);
	ck_assert_int_eq(WEXITSTATUS(wait_exit(pid)), 0);
	close(nfd);
}
END_TEST

START_TEST(socket_activation)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sock_path);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 16), 0);
	/* Pass a socket path the daemon cannot bind: it must use fd 3 instead. */
	pid_t pid = start_daemon(NULL, lfd);
	close(lfd);
	ck_assert_msg(ping(), "no answer on the activated socket");
	kill(pid, SIGTERM);
	ck_assert_int_eq(WEXITSTATUS(wait_exit(pid)), 0);
	/* The socket file belongs to systemd: the daemon must leave it. */
	ck_assert_int_eq(access(sock_path, F_OK), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("systemd");
	TCase *tc = tcase_create("protocols");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, notify_ready_status_stopping);
	tcase_add_test(tc, notify_watchdog);
	tcase_add_test(tc, reload_notifies);
	tcase_add_test(tc, socket_activation);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/*
 * fdcount.h - count this process's open fds, for leak checks in the proto tests.
 */
#ifndef CORRAL_TEST_FDCOUNT_H
#define CORRAL_TEST_FDCOUNT_H

#include <dirent.h>

/* Number of open fds (the directory stream's own fd excluded). */
static inline int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

#endif

/* scratch.c - see scratch.h. */
#include <config.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "scratch.h"

static char root[4096];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void
rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
cleanup(void)
{
	if (root[0])
		rm_tree(root);
}

const char *
scratch_reset(void)
{
	char dir[4200];

	if (!root[0]) {
		const char *t = getenv("FUZZ_TMPDIR");
		struct stat st;
		if (!t || !*t)
			t = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
			    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
		if (!t)
			t = getenv("TMPDIR");
		if (!t || !*t)
			t = "/tmp";
		snprintf(root, sizeof root, "%s/chtools-fuzz.XXXXXX", t);
		if (!mkdtemp(root)) {
			perror(root);
			root[0] = '\0';
			return NULL;
		}
		atexit(cleanup);
	}
	snprintf(dir, sizeof dir, "%s/ch", root);
	rm_tree(dir);
	if (mkdir(dir, 0700) < 0)
		return NULL;
	snprintf(dir, sizeof dir, "%s/ch/subscribers", root);
	if (mkdir(dir, 0700) < 0)
		return NULL;
	snprintf(dir, sizeof dir, "%s/ch", root);
	static char path[4200];
	memcpy(path, dir, sizeof path);
	return path;
}

int
scratch_write(const char *name, const void *data, size_t len)
{
	char path[8400];
	int fd, rc;

	snprintf(path, sizeof path, "%s/ch/%s", root, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	rc = ch_write_full(fd, data, len);
	if (close(fd) < 0)
		rc = -1;
	return rc;
}

/*
 * Reading folded stacks back: pystrobe's own, flamegraph.pl's and
 * inferno's, py-spy's raw output (`thread (TID): NAME`, `thread (0x...)`,
 * `process PID:"COMMAND"` roots),
 * and austin's collapsed output (`P<pid>;T<tid>;file:function:line` and
 * its `# key: value` header; austin 1's `Thread 7f...;function (file);L<line>`).
 * The text is untrusted: a malformed line is an error naming its number.
 * A UTF-8 byte order mark at the start is skipped.
 */
#ifndef PYSTROBE_FOLDEDIN_H
#define PYSTROBE_FOLDEDIN_H

#include <stddef.h>

#include "common/util.h"
#include "output/profile.h"

/* Longest line, most frames per stack and largest input accepted. */
#define FOLDEDIN_MAX_LINE (16u << 20)
#define FOLDEDIN_MAX_FRAMES 65536u
#define FOLDEDIN_MAX_INPUT (1ull << 30)

/*
 * Adds the stacks of text[0..n) to p (initialised by the caller).  name is
 * what error messages call the input.  Returns 0, or a negative errno with
 * err saying "NAME:LINE: what is wrong".
 */
int folded_read(struct profile *p, const char *text, size_t n, const char *name, struct pserr *err);

/*
 * Reads fd to its end (at most max_input bytes) and parses it as above, a
 * line at a time: it stops at the first bad line (a NUL byte, longer than
 * FOLDEDIN_MAX_LINE, no count...) or past max_input, and keeps only the
 * line being read, and when fd cannot be read again from where it started
 * (a pipe), the lines before the first that tells austin's output from
 * others (at most max_input bytes).  Errors name the input `name`.
 */
int folded_read_fd(struct profile *p, int fd, const char *name, uint64_t max_input, struct pserr *err);

/*
 * Reads a regular file (or stdin for "-") with folded_read_fd.  Anything
 * else under the name (a FIFO, a device, a directory) is an error, and is
 * never opened.
 */
int folded_read_file(struct profile *p, const char *path, struct pserr *err);

#endif

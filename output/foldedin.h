/*
 * Reading folded stacks back: pystrobe's own, flamegraph.pl's and
 * inferno's, py-spy's raw output (`thread (TID): NAME`, `thread (0x...)`,
 * `process PID:"COMMAND"` roots),
 * and austin's collapsed output (`P<pid>;T<tid>;file:function:line` and
 * its `# key: value` header; austin 1's `Thread 7f...;function (file);L<line>`).
 * The text is untrusted: a malformed line is an error naming its number.
 */
#ifndef PYSTROBE_FOLDEDIN_H
#define PYSTROBE_FOLDEDIN_H

#include <stddef.h>

#include "common/util.h"
#include "output/profile.h"

/* Longest line and most frames per stack accepted. */
#define FOLDEDIN_MAX_LINE (16u << 20)
#define FOLDEDIN_MAX_FRAMES 65536u

/*
 * Adds the stacks of text[0..n) to p (initialised by the caller).  name is
 * what error messages call the input.  Returns 0, or a negative errno with
 * err saying "NAME:LINE: what is wrong".
 */
int folded_read(struct profile *p, const char *text, size_t n, const char *name, struct pserr *err);

/* Reads a whole file (or stdin for "-") and parses it as above. */
int folded_read_file(struct profile *p, const char *path, struct pserr *err);

#endif

/*
 * Copyright (c) 2026 The Canopy Authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

/*
 * The inventory of a Linux machine, read from /proc, /sys, /etc and the
 * package databases (docs/PROTOCOL.md "Inventory").  Every list is sorted
 * and every object built in a fixed key order, so the packed bytes and their
 * hash change only when the machine did.  A missing file is not an error:
 * its fields are left out.
 */

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netdb.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utmpx.h>

#include <jansson.h>
#include <msgpack.h>

#include "agent.h"
#include "canopy_limits.h"
#include "log.h"
#include "util.h"

#define INV_SMALL_FILE	(1u * 1024 * 1024)
#define INV_DPKG_MAX	(256u * 1024 * 1024)
#define INV_RPM_MAX	(64u * 1024 * 1024)
#define INV_MAX_IFACES	256

extern char **environ;

/* Reads a file to EOF (files in /proc report a size of 0). */
static char *
slurp(const char *path, size_t max, size_t *lenp)
{
	char	*buf = NULL, *nb;
	size_t	 len = 0, cap = 0;
	ssize_t	 r;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	for (;;) {
		if (cap - len < 4096 + 1) {
			cap = cap ? cap * 2 : 8192;
			if ((nb = realloc(buf, cap)) == NULL)
				goto fail;
			buf = nb;
		}
		if ((r = read(fd, buf + len, cap - len - 1)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* First line of a small file, trimmed; NULL when unreadable or empty. */
static char *
read_line(const char *path)
{
	char	*s, *e;
	size_t	 len;

	if ((s = slurp(path, INV_SMALL_FILE, &len)) == NULL)
		return NULL;
	if ((e = strchr(s, '\n')) != NULL)
		*e = '\0';
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	if (s[0] == '\0') {
		free(s);
		return NULL;
	}
	return s;
}

/* Iterates lines: returns the next line start and its length, or NULL. */
static const char *
next_line(const char **p, const char *end, size_t *llen)
{
	const char	*s = *p, *nl;

	if (s >= end)
		return NULL;
	if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
		nl = end;
	*llen = (size_t)(nl - s);
	*p = nl < end ? nl + 1 : end;
	return s;
}

static void
copy_value(char *dst, size_t dstlen, const char *v, size_t vlen)
{
	/* os-release values may be quoted, with backslash escapes. */
	size_t	 o = 0, i = 0;
	char	 q = 0;

	if (vlen > 0 && (v[0] == '"' || v[0] == '\'')) {
		q = v[0];
		i = 1;
	}
	for (; i < vlen && o + 1 < dstlen; i++) {
		if (q && v[i] == q)
			break;
		if (q == '"' && v[i] == '\\' && i + 1 < vlen)
			i++;
		dst[o++] = v[i];
	}
	dst[o] = '\0';
}

void
inv_parse_os_release(const char *text, size_t len, struct os_release *os)
{
	const char	*p = text, *end = text + len, *l, *eq;
	size_t		 ll, kl;

	memset(os, 0, sizeof(*os));
	while ((l = next_line(&p, end, &ll)) != NULL) {
		if (ll == 0 || l[0] == '#' ||
		    (eq = memchr(l, '=', ll)) == NULL)
			continue;
		kl = (size_t)(eq - l);
#define OSKEY(k, f) \
		if (kl == strlen(k) && memcmp(l, k, kl) == 0) { \
			copy_value(os->f, sizeof(os->f), eq + 1, ll - kl - 1); \
			continue; \
		}
		OSKEY("NAME", name);
		OSKEY("VERSION_ID", version);
		OSKEY("ID", id);
		OSKEY("PRETTY_NAME", pretty_name);
#undef OSKEY
	}
}

uint64_t
inv_parse_meminfo(const char *text, size_t len)
{
	const char	*p = text, *end = text + len, *l;
	size_t		 ll;
	char		 num[32];
	size_t		 i, n;

	while ((l = next_line(&p, end, &ll)) != NULL) {
		if (ll < 9 || memcmp(l, "MemTotal:", 9) != 0)
			continue;
		for (i = 9; i < ll && isspace((unsigned char)l[i]); i++)
			;
		for (n = 0; i < ll && isdigit((unsigned char)l[i]) &&
		    n + 1 < sizeof(num); i++)
			num[n++] = l[i];
		num[n] = '\0';
		if (n == 0)
			return 0;
		return strtoull(num, NULL, 10) * 1024;
	}
	return 0;
}

int
sw_list_add(struct sw_list *sl, const char *name, size_t nlen,
    const char *version, size_t vlen)
{
	struct sw_entry	*nv;

	if (sl->n == sl->cap) {
		size_t	 ncap = sl->cap ? sl->cap * 2 : 256;

		if ((nv = reallocarray(sl->v, ncap, sizeof(*nv))) == NULL)
			return -1;
		sl->v = nv;
		sl->cap = ncap;
	}
	if ((sl->v[sl->n].name = strndup(name, nlen)) == NULL ||
	    (sl->v[sl->n].version = strndup(version, vlen)) == NULL) {
		free(sl->v[sl->n].name);
		return -1;
	}
	sl->n++;
	return 0;
}

static int
sw_cmp(const void *a, const void *b)
{
	const struct sw_entry	*x = a, *y = b;
	int			 c;

	if ((c = strcmp(x->name, y->name)) != 0)
		return c;
	return strcmp(x->version, y->version);
}

void
sw_list_sort(struct sw_list *sl)
{
	size_t	 i, o;

	if (sl->n == 0)
		return;
	qsort(sl->v, sl->n, sizeof(*sl->v), sw_cmp);
	for (i = 1, o = 1; i < sl->n; i++) {
		if (sw_cmp(&sl->v[i], &sl->v[o - 1]) == 0) {
			free(sl->v[i].name);
			free(sl->v[i].version);
			continue;
		}
		sl->v[o++] = sl->v[i];
	}
	sl->n = o;
}

void
sw_list_free(struct sw_list *sl)
{
	size_t	 i;

	for (i = 0; i < sl->n; i++) {
		free(sl->v[i].name);
		free(sl->v[i].version);
	}
	free(sl->v);
	memset(sl, 0, sizeof(*sl));
}

static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && isspace((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/*
 * dpkg's status file: stanzas separated by blank lines; a package counts
 * when its Status ends in "installed" (not config-files, half-installed).
 */
int
inv_parse_dpkg_status(const char *text, size_t len, struct sw_list *sl)
{
	const char	*p = text, *end = text + len, *l;
	const char	*pkg = NULL, *ver = NULL;
	size_t		 ll, pl = 0, vl = 0;
	int		 inst = 0, last;

	for (;;) {
		l = next_line(&p, end, &ll);
		last = (l == NULL);
		if (last || ll == 0 || (ll == 1 && l[0] == '\r')) {
			if (pkg != NULL && ver != NULL && inst && pl > 0 &&
			    sw_list_add(sl, pkg, pl, ver, vl) == -1)
				return -1;
			pkg = ver = NULL;
			inst = 0;
			if (last)
				break;
			continue;
		}
		if (isspace((unsigned char)l[0]))
			continue;	/* continuation line */
		if (ll > 8 && memcmp(l, "Package:", 8) == 0) {
			pkg = l + 8;
			pl = ll - 8;
			trim(&pkg, &pl);
		} else if (ll > 8 && memcmp(l, "Version:", 8) == 0) {
			ver = l + 8;
			vl = ll - 8;
			trim(&ver, &vl);
		} else if (ll > 7 && memcmp(l, "Status:", 7) == 0) {
			const char	*s = l + 7;
			size_t		 sl2 = ll - 7;

			trim(&s, &sl2);
			inst = sl2 >= 10 && memcmp(s + sl2 - 10, " installed",
			    10) == 0;
		}
	}
	return 0;
}

int
inv_parse_rpm_qa(const char *text, size_t len, struct sw_list *sl)
{
	const char	*p = text, *end = text + len, *l, *tab;
	size_t		 ll;

	while ((l = next_line(&p, end, &ll)) != NULL) {
		if ((tab = memchr(l, '\t', ll)) == NULL || tab == l)
			continue;
		if (sw_list_add(sl, l, (size_t)(tab - l), tab + 1,
		    ll - (size_t)(tab - l) - 1) == -1)
			return -1;
	}
	return 0;
}

/* Runs rpm without a shell and collects its output. */
static void
collect_rpm(struct sw_list *sl)
{
	const char	*rpm = NULL;
	char		*argv[] = { NULL, "-qa", "--qf",
			    "%{NAME}\t%{VERSION}-%{RELEASE}\n", NULL };
	posix_spawn_file_actions_t fa;
	char		*buf = NULL, *nb;
	size_t		 len = 0, cap = 0;
	ssize_t		 r;
	pid_t		 pid;
	int		 pfd[2], st;

	if (access("/usr/bin/rpm", X_OK) == 0)
		rpm = "/usr/bin/rpm";
	else if (access("/bin/rpm", X_OK) == 0)
		rpm = "/bin/rpm";
	else
		return;
	argv[0] = (char *)(uintptr_t)rpm;
	if (pipe2(pfd, O_CLOEXEC) == -1)
		return;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null",
	    O_WRONLY, 0);
	if (posix_spawn(&pid, rpm, &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(pfd[0]);
		close(pfd[1]);
		return;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			if (cap > INV_RPM_MAX || (nb = realloc(buf, cap)) == NULL)
				break;
			buf = nb;
		}
		r = read(pfd[0], buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(pfd[0]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (buf != NULL && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		(void)inv_parse_rpm_qa(buf, len, sl);
	free(buf);
}

static void
set_str(json_t *o, const char *k, const char *v)
{
	if (v != NULL && v[0] != '\0')
		json_object_set_new(o, k, json_string(v));
}

static json_t *
collect_os(void)
{
	json_t			*o = json_object();
	struct os_release	 os;
	struct utsname		 un;
	char			*t;
	size_t			 len;

	if ((t = slurp("/etc/os-release", INV_SMALL_FILE, &len)) == NULL)
		t = slurp("/usr/lib/os-release", INV_SMALL_FILE, &len);
	if (t != NULL) {
		inv_parse_os_release(t, len, &os);
		free(t);
		set_str(o, "name", os.name);
		set_str(o, "version", os.version);
		set_str(o, "id", os.id);
		set_str(o, "pretty_name", os.pretty_name);
	}
	if (uname(&un) == 0) {
		set_str(o, "kernel", un.release);
		set_str(o, "arch", un.machine);
	}
	return o;
}

static char *
cpu_model(void)
{
	static const char *keys[] = { "model name", "Hardware", "cpu model",
	    "Processor", "cpu" };
	const char	*p, *end, *l, *c;
	char		*t, *res = NULL;
	size_t		 len, ll, i, vl;

	if ((t = slurp("/proc/cpuinfo", 16u * 1024 * 1024, &len)) == NULL)
		return NULL;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]) && res == NULL; i++) {
		p = t;
		end = t + len;
		while ((l = next_line(&p, end, &ll)) != NULL) {
			size_t	 kl = strlen(keys[i]);

			if (ll <= kl || memcmp(l, keys[i], kl) != 0 ||
			    (l[kl] != '\t' && l[kl] != ' ' && l[kl] != ':') ||
			    (c = memchr(l, ':', ll)) == NULL)
				continue;
			c++;
			vl = ll - (size_t)(c - l);
			trim(&c, &vl);
			if (vl > 0)
				res = strndup(c, vl);
			break;
		}
	}
	free(t);
	return res;
}

static int
cpu_is_guest(void)
{
	char	*t;
	size_t	 len;
	int	 yes;

	if ((t = slurp("/proc/cpuinfo", 16u * 1024 * 1024, &len)) == NULL)
		return 0;
	yes = strstr(t, " hypervisor") != NULL;
	free(t);
	return yes;
}

static const char *
guess_hypervisor(const char *vendor, const char *product)
{
	static const struct { const char *needle, *name; } known[] = {
		{ "QEMU", "kvm" }, { "KVM", "kvm" }, { "VMware", "vmware" },
		{ "innotek", "virtualbox" }, { "VirtualBox", "virtualbox" },
		{ "Xen", "xen" }, { "Amazon EC2", "kvm" },
		{ "Google Compute Engine", "kvm" }, { "Parallels", "parallels" },
		{ "Bochs", "bochs" }, { "BHYVE", "bhyve" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if ((vendor != NULL && strstr(vendor, known[i].needle)) ||
		    (product != NULL && strstr(product, known[i].needle)))
			return known[i].name;
	if (vendor != NULL && strstr(vendor, "Microsoft") != NULL &&
	    product != NULL && strstr(product, "Virtual") != NULL)
		return "hyperv";
	return NULL;
}

static json_t *
collect_disks(void)
{
	json_t		*a = json_array(), *d;
	DIR		*dir;
	struct dirent	*de;
	char		 path[512], **names = NULL, *s;
	size_t		 n = 0, i;

	if ((dir = opendir("/sys/block")) == NULL)
		return a;
	while ((de = readdir(dir)) != NULL) {
		char	**nn;

		if (de->d_name[0] == '.' || strncmp(de->d_name, "loop", 4) == 0 ||
		    strncmp(de->d_name, "ram", 3) == 0 ||
		    strncmp(de->d_name, "zram", 4) == 0)
			continue;
		if ((nn = reallocarray(names, n + 1, sizeof(*names))) == NULL)
			break;
		names = nn;
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(dir);
	for (i = 0; i < n; i++) {
		size_t	 j;
		char	*t;

		for (j = i + 1; j < n; j++)
			if (strcmp(names[j], names[i]) < 0) {
				t = names[i];
				names[i] = names[j];
				names[j] = t;
			}
	}
	for (i = 0; i < n; i++) {
		d = json_object();
		json_object_set_new(d, "name", json_string(names[i]));
		snprintf(path, sizeof(path), "/sys/block/%s/size", names[i]);
		if ((s = read_line(path)) != NULL) {
			json_object_set_new(d, "size_bytes", json_integer(
			    (json_int_t)(strtoull(s, NULL, 10) * 512)));
			free(s);
		}
		snprintf(path, sizeof(path), "/sys/block/%s/device/model",
		    names[i]);
		if ((s = read_line(path)) != NULL) {
			set_str(d, "model", s);
			free(s);
		}
		json_array_append_new(a, d);
		free(names[i]);
	}
	free(names);
	return a;
}

static json_t *
collect_hardware(void)
{
	json_t		*o = json_object();
	char		*model, *t, *vendor, *product;
	const char	*hv;
	size_t		 len;
	long		 ncpu;
	int		 guest;

	if ((model = cpu_model()) != NULL) {
		set_str(o, "cpu_model", model);
		free(model);
	}
	if ((ncpu = sysconf(_SC_NPROCESSORS_ONLN)) > 0)
		json_object_set_new(o, "cpu_cores", json_integer(ncpu));
	if ((t = slurp("/proc/meminfo", INV_SMALL_FILE, &len)) != NULL) {
		uint64_t	 mem = inv_parse_meminfo(t, len);

		if (mem > 0)
			json_object_set_new(o, "memory_bytes",
			    json_integer((json_int_t)mem));
		free(t);
	}
	vendor = read_line("/sys/class/dmi/id/sys_vendor");
	product = read_line("/sys/class/dmi/id/product_name");
	hv = guess_hypervisor(vendor, product);
	guest = hv != NULL || cpu_is_guest();
	json_object_set_new(o, "virtual", json_boolean(guest));
	if (guest)
		set_str(o, "hypervisor", hv != NULL ? hv : "unknown");
	set_str(o, "vendor", vendor);
	set_str(o, "product", product);
	free(vendor);
	free(product);
	json_object_set_new(o, "disks", collect_disks());
	return o;
}

struct iface {
	char	 name[IF_NAMESIZE + 1];
	char	 mac[18];
	json_t	*v4, *v6;
};

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
	    json_string_value(*(json_t *const *)b));
}

/* A sorted copy of an array of strings. */
static json_t *
sorted_strings(json_t *a)
{
	json_t	**v, *out = json_array();
	size_t	 n = json_array_size(a), i;

	if (n == 0 || (v = calloc(n, sizeof(*v))) == NULL)
		return out;
	for (i = 0; i < n; i++)
		v[i] = json_array_get(a, i);
	qsort(v, n, sizeof(*v), str_cmp);
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

static int
iface_cmp(const void *a, const void *b)
{
	return strcmp(((const struct iface *)a)->name,
	    ((const struct iface *)b)->name);
}

static json_t *
collect_interfaces(void)
{
	json_t		*a = json_array(), *o;
	struct ifaddrs	*ifa, *i;
	struct iface	 ifs[INV_MAX_IFACES];
	size_t		 n = 0, k;
	char		 buf[INET6_ADDRSTRLEN], path[128], *mac;

	if (getifaddrs(&ifa) == -1)
		return a;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_name == NULL || (i->ifa_flags & IFF_LOOPBACK) ||
		    strcmp(i->ifa_name, "lo") == 0)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(ifs[k].name, i->ifa_name) == 0)
				break;
		if (k == n) {
			if (n == INV_MAX_IFACES)
				continue;
			memset(&ifs[n], 0, sizeof(ifs[n]));
			strlcpy(ifs[n].name, i->ifa_name, sizeof(ifs[n].name));
			ifs[n].v4 = json_array();
			ifs[n].v6 = json_array();
			n++;
		}
		if (i->ifa_addr == NULL)
			continue;
		switch (i->ifa_addr->sa_family) {
		case AF_INET:
			if (inet_ntop(AF_INET, &((struct sockaddr_in *)
			    (void *)i->ifa_addr)->sin_addr, buf,
			    sizeof(buf)) != NULL)
				json_array_append_new(ifs[k].v4,
				    json_string(buf));
			break;
		case AF_INET6:
			if (inet_ntop(AF_INET6, &((struct sockaddr_in6 *)
			    (void *)i->ifa_addr)->sin6_addr, buf,
			    sizeof(buf)) != NULL)
				json_array_append_new(ifs[k].v6,
				    json_string(buf));
			break;
		case AF_PACKET: {
			struct sockaddr_ll *ll =
			    (struct sockaddr_ll *)(void *)i->ifa_addr;

			if (ll->sll_halen == 6)
				snprintf(ifs[k].mac, sizeof(ifs[k].mac),
				    "%02x:%02x:%02x:%02x:%02x:%02x",
				    ll->sll_addr[0], ll->sll_addr[1],
				    ll->sll_addr[2], ll->sll_addr[3],
				    ll->sll_addr[4], ll->sll_addr[5]);
			break;
		}
		default:
			break;
		}
	}
	freeifaddrs(ifa);
	if (n > 0)
		qsort(ifs, n, sizeof(ifs[0]), iface_cmp);
	for (k = 0; k < n; k++) {
		if (ifs[k].mac[0] == '\0') {
			snprintf(path, sizeof(path), "/sys/class/net/%s/address",
			    ifs[k].name);
			if ((mac = read_line(path)) != NULL) {
				strlcpy(ifs[k].mac, mac, sizeof(ifs[k].mac));
				free(mac);
			}
		}
		o = json_object();
		json_object_set_new(o, "name", json_string(ifs[k].name));
		json_object_set_new(o, "mac", json_string(ifs[k].mac));
		json_object_set_new(o, "ipv4", sorted_strings(ifs[k].v4));
		json_object_set_new(o, "ipv6", sorted_strings(ifs[k].v6));
		json_decref(ifs[k].v4);
		json_decref(ifs[k].v6);
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *
collect_software(void)
{
	json_t		*a = json_array(), *o;
	struct sw_list	 sl;
	char		*t;
	size_t		 len, i;

	memset(&sl, 0, sizeof(sl));
	if ((t = slurp("/var/lib/dpkg/status", INV_DPKG_MAX, &len)) != NULL) {
		if (inv_parse_dpkg_status(t, len, &sl) == -1)
			log_warnx("dpkg status: out of memory");
		free(t);
	}
	collect_rpm(&sl);
	sw_list_sort(&sl);
	for (i = 0; i < sl.n; i++) {
		o = json_object();
		json_object_set_new(o, "name", json_string(sl.v[i].name));
		json_object_set_new(o, "version",
		    json_string(sl.v[i].version));
		json_array_append_new(a, o);
	}
	sw_list_free(&sl);
	return a;
}

static int
user_cmp(const void *a, const void *b)
{
	json_t	*x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int	 c;

	c = strcmp(json_string_value(json_object_get(x, "name")),
	    json_string_value(json_object_get(y, "name")));
	if (c != 0)
		return c;
	return strcmp(json_string_value(json_object_get(x, "tty")),
	    json_string_value(json_object_get(y, "tty")));
}

static json_t *
collect_users(void)
{
	json_t		*a = json_array(), **v = NULL, **nv;
	struct utmpx	*u;
	size_t		 n = 0, i;
	char		 name[sizeof(u->ut_user) + 1], tty[sizeof(u->ut_line) + 1];

	setutxent();
	while ((u = getutxent()) != NULL) {
		if (u->ut_type != USER_PROCESS || u->ut_user[0] == '\0')
			continue;
		if ((nv = reallocarray(v, n + 1, sizeof(*v))) == NULL)
			break;
		v = nv;
		memcpy(name, u->ut_user, sizeof(u->ut_user));
		name[sizeof(u->ut_user)] = '\0';
		memcpy(tty, u->ut_line, sizeof(u->ut_line));
		tty[sizeof(u->ut_line)] = '\0';
		v[n++] = json_pack("{s:s, s:s, s:I}", "name", name, "tty", tty,
		    "since", (json_int_t)u->ut_tv.tv_sec * 1000 +
		    u->ut_tv.tv_usec / 1000);
	}
	endutxent();
	for (i = 0; i < n; i++)
		if (v[i] == NULL)
			v[i] = json_pack("{s:s, s:s, s:i}", "name", "?",
			    "tty", "?", "since", 0);
	if (n > 0)
		qsort(v, n, sizeof(*v), user_cmp);
	for (i = 0; i < n; i++)
		json_array_append_new(a, v[i]);
	free(v);
	return a;
}

static int64_t
boot_time_ms(void)
{
	const char	*p, *end, *l;
	char		*t;
	size_t		 len, ll;
	int64_t		 bt = 0;

	if ((t = slurp("/proc/stat", 16u * 1024 * 1024, &len)) == NULL)
		return 0;
	p = t;
	end = t + len;
	while ((l = next_line(&p, end, &ll)) != NULL)
		if (ll > 6 && memcmp(l, "btime ", 6) == 0) {
			bt = strtoll(l + 6, NULL, 10) * 1000;
			break;
		}
	free(t);
	return bt;
}

/* /proc/mounts writes space, tab, newline and backslash as \ooo. */
static void
unescape_mount(char *s)
{
	char	*d = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			    (s[3] - '0'));
			s += 3;
		} else
			*d++ = *s;
	}
	*d = '\0';
}

/*
 * Filesystems on block devices (and the root, whatever it is: containers
 * mount an overlay there), each device once, for the server's disk-full
 * status rule.  used_bytes is rounded down to size / INV_FS_GRAIN so that
 * ordinary writes do not change the inventory's hash at every sync.
 */
static json_t *
collect_filesystems(void)
{
	json_t		*a = json_array(), *f;
	FILE		*fp;
	char		 line[4096], dev[1024], mnt[1024], type[64];
	dev_t		 seen[INV_FS_MAX];
	size_t		 nseen = 0, i;
	struct statvfs	 sv;
	struct stat	 st;
	uint64_t	 size, used, grain;

	if ((fp = fopen("/proc/mounts", "re")) == NULL)
		return a;
	while (fgets(line, sizeof(line), fp) != NULL && nseen < INV_FS_MAX) {
		if (sscanf(line, "%1023s %1023s %63s", dev, mnt, type) != 3)
			continue;
		unescape_mount(mnt);
		if (strcmp(mnt, "/") != 0 && (strncmp(dev, "/dev/", 5) != 0 ||
		    strcmp(type, "squashfs") == 0 ||
		    strcmp(type, "iso9660") == 0 || strcmp(type, "udf") == 0))
			continue;
		if (stat(mnt, &st) == -1 || statvfs(mnt, &sv) == -1 ||
		    sv.f_blocks == 0)
			continue;
		for (i = 0; i < nseen; i++)
			if (seen[i] == st.st_dev)
				break;
		if (i < nseen)
			continue;
		seen[nseen++] = st.st_dev;
		size = (uint64_t)sv.f_blocks * sv.f_frsize;
		used = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
		if ((grain = size / INV_FS_GRAIN) > 0)
			used -= used % grain;
		f = json_object();
		json_object_set_new(f, "mount", json_string(mnt));
		json_object_set_new(f, "fstype", json_string(type));
		json_object_set_new(f, "size_bytes", json_integer(
		    (json_int_t)size));
		json_object_set_new(f, "used_bytes", json_integer(
		    (json_int_t)used));
		json_array_append_new(a, f);
	}
	fclose(fp);
	return a;
}

json_t *
inventory_collect(void)
{
	json_t		*o = json_object();
	struct addrinfo	 hints, *res = NULL;
	char		 host[256];
	int64_t		 bt;

	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		set_str(o, "hostname", host);
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		hints.ai_family = AF_UNSPEC;
		if (getaddrinfo(host, NULL, &hints, &res) == 0 &&
		    res->ai_canonname != NULL && res->ai_canonname[0] != '\0')
			set_str(o, "fqdn", res->ai_canonname);
		else
			set_str(o, "fqdn", host);
		if (res != NULL)
			freeaddrinfo(res);
	}
	if ((bt = boot_time_ms()) > 0)
		json_object_set_new(o, "boot_time", json_integer(bt));
	json_object_set_new(o, "agent_version", json_string(AGENT_VERSION));
	json_object_set_new(o, "os", collect_os());
	json_object_set_new(o, "hardware", collect_hardware());
	json_object_set_new(o, "interfaces", collect_interfaces());
	json_object_set_new(o, "software", collect_software());
	json_object_set_new(o, "users", collect_users());
	json_object_set_new(o, "filesystems", collect_filesystems());
	return o;
}

int
inventory_pack(msgpack_packer *pk, const json_t *j)
{
	const char	*k;
	json_t		*v;
	size_t		 i;
	json_int_t	 n;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		msgpack_pack_map(pk, json_object_size(j));
		json_object_foreach((json_t *)(uintptr_t)j, k, v) {
			msgpack_pack_str_with_body(pk, k, strlen(k));
			if (inventory_pack(pk, v) == -1)
				return -1;
		}
		return 0;
	case JSON_ARRAY:
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
			if (inventory_pack(pk, v) == -1)
				return -1;
		return 0;
	case JSON_STRING:
		return msgpack_pack_str_with_body(pk, json_string_value(j),
		    json_string_length(j));
	case JSON_INTEGER:
		n = json_integer_value(j);
		return n >= 0 ? msgpack_pack_uint64(pk, (uint64_t)n) :
		    msgpack_pack_int64(pk, n);
	case JSON_REAL:
		return msgpack_pack_double(pk, json_real_value(j));
	case JSON_TRUE:
		return msgpack_pack_true(pk);
	case JSON_FALSE:
		return msgpack_pack_false(pk);
	case JSON_NULL:
		return msgpack_pack_nil(pk);
	}
	return -1;
}

int
inventory_build(msgpack_sbuffer *sb, char hash[65], const char *name)
{
	msgpack_packer	 pk;
	json_t		*inv;
	int		 rv;

	if ((inv = inventory_collect()) == NULL)
		return -1;
	if (name != NULL && name[0] != '\0' &&
	    json_object_set_new(inv, "name", json_string(name)) == -1) {
		json_decref(inv);
		return -1;
	}
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	rv = inventory_pack(&pk, inv);
	json_decref(inv);
	if (rv == 0)
		sha256_hex(sb->data, sb->size, hash);
	return rv;
}

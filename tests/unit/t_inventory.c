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

/* The inventory's pure parsers, and the real collector on this machine. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "agent/agent.h"
#include "log.h"
#include "msg.h"
#include "util.h"
#include "test.h"

static void
t_os_release(void)
{
	struct os_release	 os;
	const char		*t =
	    "# comment\n"
	    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
	    "NAME=\"Debian GNU/Linux\"\n"
	    "VERSION_ID=\"12\"\n"
	    "VERSION=\"12 (bookworm)\"\n"
	    "ID=debian\n"
	    "ID_LIKE=\n"
	    "garbage line\n"
	    "HOME_URL=\"https://www.debian.org/\"";

	inv_parse_os_release(t, strlen(t), &os);
	CHECK_STR(os.name, "Debian GNU/Linux");
	CHECK_STR(os.version, "12");
	CHECK_STR(os.id, "debian");
	CHECK_STR(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");

	t = "NAME='Astra Linux'\nID=astra\nPRETTY_NAME=\"A \\\"quoted\\\" "
	    "name\"\n";
	inv_parse_os_release(t, strlen(t), &os);
	CHECK_STR(os.name, "Astra Linux");
	CHECK_STR(os.id, "astra");
	CHECK_STR(os.pretty_name, "A \"quoted\" name");
	CHECK_STR(os.version, "");

	inv_parse_os_release("", 0, &os);
	CHECK_STR(os.name, "");
	/* Not NUL-terminated: only len bytes are read. */
	inv_parse_os_release("ID=abcdef", 5, &os);
	CHECK_STR(os.id, "ab");
}

static void
t_meminfo(void)
{
	const char	*t = "MemFree:  100 kB\nMemTotal:       16384 kB\n"
	    "Buffers: 1 kB\n";

	CHECK(inv_parse_meminfo(t, strlen(t)) == 16384ULL * 1024);
	CHECK(inv_parse_meminfo("MemFree: 1 kB\n", 14) == 0);
	CHECK(inv_parse_meminfo("MemTotal:\n", 10) == 0);
	CHECK(inv_parse_meminfo("", 0) == 0);
}

static void
t_dpkg(void)
{
	struct sw_list	 sl;
	const char	*t =
	    "Package: zlib1g\n"
	    "Status: install ok installed\n"
	    "Version: 1:1.2.13.dfsg-1\n"
	    "Description: compression library\n"
	    " long description, Package: fake\n"
	    "\n"
	    "Package: removed-pkg\n"
	    "Status: deinstall ok config-files\n"
	    "Version: 1.0\n"
	    "\n"
	    "Package: adduser\n"
	    "Status: install ok installed\n"
	    "Version: 3.134\n"
	    "\n"
	    "Package: noversion\n"
	    "Status: install ok installed\n"
	    "\n"
	    "Package: half\n"
	    "Status: install reinstreq half-installed\n"
	    "Version: 2\n"
	    "\n"
	    "Package: last\n"
	    "Version: 0.1\n"
	    "Status: install ok installed";

	memset(&sl, 0, sizeof(sl));
	CHECK(inv_parse_dpkg_status(t, strlen(t), &sl) == 0);
	CHECK(sl.n == 3);
	sw_list_sort(&sl);
	if (sl.n == 3) {
		CHECK_STR(sl.v[0].name, "adduser");
		CHECK_STR(sl.v[0].version, "3.134");
		CHECK_STR(sl.v[1].name, "last");
		CHECK_STR(sl.v[2].name, "zlib1g");
		CHECK_STR(sl.v[2].version, "1:1.2.13.dfsg-1");
	}
	/* rpm output merges and duplicates go. */
	t = "bash\t5.1.8-6.el9\nbadline\nzlib1g\t1:1.2.13.dfsg-1\n";
	CHECK(inv_parse_rpm_qa(t, strlen(t), &sl) == 0);
	sw_list_sort(&sl);
	CHECK(sl.n == 4);
	if (sl.n == 4) {
		CHECK_STR(sl.v[1].name, "bash");
		CHECK_STR(sl.v[1].version, "5.1.8-6.el9");
	}
	sw_list_free(&sl);

	memset(&sl, 0, sizeof(sl));
	CHECK(inv_parse_dpkg_status("", 0, &sl) == 0);
	CHECK(sl.n == 0);
	sw_list_free(&sl);
}

static void
t_pack_stable(void)
{
	msgpack_sbuffer	 a, b;
	msgpack_packer	 pk;
	json_t		*j;
	char		 h1[65], h2[65];

	j = json_pack("{s:s, s:i, s:[{s:s}], s:b, s:I}", "z", "first",
	    "a", 5, "l", "k", "v", "t", 1, "neg", (json_int_t)-3);
	msgpack_sbuffer_init(&a);
	msgpack_packer_init(&pk, &a, msgpack_sbuffer_write);
	CHECK(inventory_pack(&pk, j) == 0);
	/* Insertion order is kept: "z" comes first. */
	CHECK(a.size > 3 && (uint8_t)a.data[0] == 0x85 &&
	    memcmp(a.data + 2, "z", 1) == 0);
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	CHECK(inventory_pack(&pk, j) == 0);
	CHECK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0);
	json_decref(j);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);

	/* The real collector: twice, the same hash. */
	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	CHECK(inventory_build(&a, h1, NULL) == 0);
	CHECK(inventory_build(&b, h2, "") == 0);
	CHECK(strlen(h1) == 64);
	CHECK_STR(h1, h2);
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);

	/* A display name is part of the inventory, so of its hash. */
	msgpack_sbuffer_init(&a);
	CHECK(inventory_build(&a, h2, "front-desk-3") == 0);
	CHECK(strcmp(h1, h2) != 0);
	{
		msgpack_unpacked up;
		const msgpack_object *n;

		msgpack_unpacked_init(&up);
		CHECK(msgpack_unpack_next(&up, a.data, a.size, NULL) ==
		    MSGPACK_UNPACK_SUCCESS);
		n = mp_map_get(&up.data, "name");
		CHECK(n != NULL && n->type == MSGPACK_OBJECT_STR &&
		    n->via.str.size == 12 &&
		    memcmp(n->via.str.ptr, "front-desk-3", 12) == 0);
		msgpack_unpacked_destroy(&up);
	}
	msgpack_sbuffer_destroy(&a);
}

static void
t_collect(void)
{
	msgpack_sbuffer	 sb;
	msgpack_unpacked up;
	const msgpack_object *o, *os, *hw;
	char		 hash[65], reason[256];

	msgpack_sbuffer_init(&sb);
	CHECK(inventory_build(&sb, hash, NULL) == 0);
	CHECK(mp_validate(sb.data, sb.size, 16, reason, sizeof(reason)) == 0);
	msgpack_unpacked_init(&up);
	CHECK(msgpack_unpack_next(&up, sb.data, sb.size, NULL) ==
	    MSGPACK_UNPACK_SUCCESS);
	o = &up.data;
	CHECK(o->type == MSGPACK_OBJECT_MAP);
	if (o->type == MSGPACK_OBJECT_MAP) {
		CHECK(mp_map_get(o, "hostname") != NULL);
		CHECK(mp_map_get(o, "fqdn") != NULL);
		CHECK(mp_map_get(o, "boot_time") != NULL);
		CHECK(mp_map_get(o, "agent_version") != NULL);
		CHECK(mp_map_get(o, "interfaces") != NULL);
		CHECK(mp_map_get(o, "users") != NULL);
		CHECK((os = mp_map_get(o, "os")) != NULL);
		if (os != NULL) {
			CHECK(mp_map_get(os, "kernel") != NULL);
			CHECK(mp_map_get(os, "arch") != NULL);
			CHECK(mp_map_get(os, "id") != NULL);
		}
		CHECK((hw = mp_map_get(o, "hardware")) != NULL);
		if (hw != NULL) {
			CHECK(mp_map_get(hw, "cpu_cores") != NULL);
			CHECK(mp_map_get(hw, "memory_bytes") != NULL);
			CHECK(mp_map_get(hw, "virtual") != NULL);
			CHECK(mp_map_get(hw, "disks") != NULL);
		}
		o = mp_map_get(o, "software");
		CHECK(o != NULL && o->type == MSGPACK_OBJECT_ARRAY);
		/* This machine is Debian: dpkg knows packages. */
		CHECK(o != NULL && o->via.array.size > 10);
	}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
}

int
main(void)
{
	log_init("t_inventory", LOG_LVL_WARN, 0);
	t_os_release();
	t_meminfo();
	t_dpkg();
	t_pack_stable();
	t_collect();
	TEST_DONE();
}

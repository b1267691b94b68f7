// common/io.h: whole writes, positioned reads (short reads, end of file), capped file reads,
// atomic file replacement and mkdir -p, including each error path that can be provoked without
// fault injection.
#include "common/io.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "common/unique_fd.h"

namespace kiln::io {
namespace {

namespace fs = std::filesystem;

class IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-io-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string put(const std::string& name, const std::string& content) {
    std::string p = dir_ + "/" + name;
    UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    EXPECT_TRUE(fd.valid());
    EXPECT_TRUE(write_all(fd.get(), content, p).ok());
    return p;
  }

  // Runs `check` where permissions apply: in a child as nobody when the test runs as root
  // (root bypasses file modes). The child's exit status carries the verdict.
  static void as_unprivileged(const std::function<bool()>& check) {
    if (::geteuid() != 0) {
      EXPECT_TRUE(check());
      return;
    }
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(2);
      ::_exit(check() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }

  std::string dir_;
};

TEST_F(IoTest, WriteAllWritesEverythingThroughShortWrites) {
  // A socket buffer far smaller than the data forces short writes; a reader drains it.
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int small = 4096;
  ASSERT_EQ(::setsockopt(a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  std::string got;
  std::thread reader([&] {
    char buf[1000];  // small reads, so the writer sees many partial transfers
    for (ssize_t n; (n = ::read(b.get(), buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  });
  Status st = write_all(a.get(), data, "socket");
  a.reset();
  reader.join();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(got, data);
}

TEST_F(IoTest, WriteErrorsNameTheTargetAndKeepErrno) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  rd.reset();  // EPIPE (SIGPIPE is ignored for the test)
  auto old = ::signal(SIGPIPE, SIG_IGN);
  Status st = write_all(wr.get(), "x", "the pipe");
  ::signal(SIGPIPE, old);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().sys_errno, EPIPE);
  EXPECT_EQ(st.error().message.rfind("write the pipe: ", 0), 0u) << st.error().message;

  Status bad = write_all(-1, "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().sys_errno, EBADF);
  EXPECT_EQ(bad.error().message.rfind("write: ", 0), 0u) << bad.error().message;
}

TEST_F(IoTest, PwriteAllWritesAtTheOffsetWithoutMovingThePosition) {
  std::string p = put("f", "0123456789");
  UniqueFd fd(::open(p.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(pwrite_all(fd.get(), "abc", 3, 4, p).ok());
  ASSERT_TRUE(pwrite_all(fd.get(), "XY", 2, 12, p).ok());  // past the end: a hole of zeros
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), 0);
  auto text = read_file(p, 100);
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(*text, std::string("0123abc789\0\0XY", 14));

  UniqueFd ro(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  Status st = pwrite_all(ro.get(), "z", 1, 0, p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().sys_errno, EBADF);
  EXPECT_NE(st.error().message.find("write " + p), std::string::npos);
}

TEST_F(IoTest, PreadAllReadsExactlyAndRefusesEndOfFile) {
  std::string p = put("f", "0123456789");
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  char buf[4];
  ASSERT_TRUE(pread_all(fd.get(), buf, 4, 3, "the file").ok());
  EXPECT_EQ(std::string(buf, 4), "3456");
  ASSERT_TRUE(pread_all(fd.get(), buf, 0, 100).ok());  // nothing wanted: nothing read

  Status eof = pread_all(fd.get(), buf, 4, 8, "kernel image");
  ASSERT_FALSE(eof.ok());
  EXPECT_EQ(eof.error().message, "kernel image is truncated: end of file at byte 10, 2 bytes short");
  EXPECT_EQ(eof.error().sys_errno, 0);

  Status bad = pread_all(-1, buf, 4, 0, "nothing");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().sys_errno, EBADF);
  EXPECT_EQ(bad.error().message.rfind("read nothing: ", 0), 0u);
}

TEST_F(IoTest, PreadAllOnAPipeIsAnError) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  char buf[1];
  Status st = pread_all(rd.get(), buf, 1, 0, "pipe");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().sys_errno, ESPIPE);
}

TEST_F(IoTest, PreadvAllFillsEveryBufferAndRefusesEndOfFile) {
  std::string p = put("f", "abcdefghijklmnop");
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  char a[3], b[1], c[5];
  iovec iov[] = {{a, sizeof a}, {nullptr, 0}, {b, sizeof b}, {c, sizeof c}};
  ASSERT_TRUE(preadv_all(fd.get(), iov, 2, p).ok());
  EXPECT_EQ(std::string(a, 3) + std::string(b, 1) + std::string(c, 5), "cdefghijk");

  Status eof = preadv_all(fd.get(), iov, 10, "snapshot");
  ASSERT_FALSE(eof.ok());
  EXPECT_EQ(eof.error().message, "snapshot is truncated: end of file at byte 16, 3 bytes short");
  EXPECT_TRUE(preadv_all(fd.get(), {}, 0).ok());
}

TEST_F(IoTest, ReadFdReadsToTheEndThroughShortReadsAndHonoursTheCap) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::thread writer([&] {
    for (int i = 0; i < 100; ++i) (void)write_all(a.get(), "0123456789");  // arrives in pieces
    a.reset();
  });
  auto got = read_fd(b.get(), 1000, "socket");
  writer.join();
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->size(), 1000u);

  std::string p = put("f", std::string(100, 'x'));
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  auto capped = read_fd(fd.get(), 99, "blob");
  ASSERT_FALSE(capped.ok());
  EXPECT_EQ(capped.error().message, "blob: larger than 99 bytes");
}

TEST_F(IoTest, ReadFileReadsUpToTheCapAndRefusesMore) {
  std::string p = put("f", std::string(100, 'x'));
  auto exact = read_file(p, 100);
  ASSERT_TRUE(exact.ok()) << exact.error().message;
  EXPECT_EQ(*exact, std::string(100, 'x'));
  auto over = read_file(p, 99);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().message, p + ": larger than 99 bytes");
  auto empty = read_file(put("e", ""), 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST_F(IoTest, ReadFileReadsProcFilesThatReportNoSize) {
  auto mounts = read_file("/proc/self/mounts", 16 << 20);
  ASSERT_TRUE(mounts.ok()) << mounts.error().message;
  EXPECT_NE(mounts->find(' '), std::string::npos);
}

TEST_F(IoTest, ReadFileReadsProcStatusToTheEnd) {
  // st_size is 0 for /proc files: the read goes to end of file, not to the reported size.
  struct stat st {};
  ASSERT_EQ(::stat("/proc/self/status", &st), 0);
  EXPECT_EQ(st.st_size, 0);
  auto status = read_file("/proc/self/status", 64 * 1024);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(status->rfind("Name:", 0), 0u) << *status;
  EXPECT_NE(status->find("\nVmHWM:"), std::string::npos);
  EXPECT_NE(status->find("\nPid:\t" + std::to_string(::getpid()) + "\n"), std::string::npos);
  auto cmdline = read_file("/proc/self/cmdline", 64 * 1024);
  ASSERT_TRUE(cmdline.ok()) << cmdline.error().message;
  EXPECT_NE(cmdline->find("unit_common"), std::string::npos);
}

TEST_F(IoTest, ReadFileRefusesMissingAndNonRegularFiles) {
  auto missing = read_file(dir_ + "/nope", 10);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().sys_errno, ENOENT);
  EXPECT_EQ(missing.error().message.rfind("open " + dir_ + "/nope: ", 0), 0u);

  auto directory = read_file(dir_, 10);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, dir_ + ": not a regular file");

  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto from_fifo = read_file(fifo, 10);  // refused at once, not blocked waiting for a writer
  ASSERT_FALSE(from_fifo.ok());
  EXPECT_EQ(from_fifo.error().message, fifo + ": not a regular file");
}

TEST_F(IoTest, ReadFileWithoutPermissionIsAnError) {
  std::string p = put("secret", "s");
  ASSERT_EQ(::chmod(p.c_str(), 0000), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  as_unprivileged([&] {
    auto r = read_file(p, 10);
    return !r.ok() && r.error().sys_errno == EACCES && r.error().message.rfind("open " + p, 0) == 0;
  });
}

std::size_t entries_in(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

TEST_F(IoTest, WriteFileAtomicReplacesAndLeavesNoTemp) {
  std::string p = dir_ + "/f.json";
  ASSERT_TRUE(write_file_atomic(p, "one").ok());
  ASSERT_TRUE(write_file_atomic(p, "two").ok());
  auto text = read_file(p, 100);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "two");
  EXPECT_EQ(entries_in(dir_), 1u);
  EXPECT_FALSE(read_file(p, 2).ok());  // over the cap
  EXPECT_FALSE(write_file_atomic(dir_ + "/missing-dir/f.json", "x").ok());
}

TEST_F(IoTest, WriteFileAtomicKeepsTheOldContentWhenTheFillFails) {
  std::string p = put("f", "old");
  auto st = write_file_atomic(p, [&](int fd) -> Status {
    KILN_TRY(write_all(fd, "half of the new", p));
    return make_error("disk on fire");
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "disk on fire");
  EXPECT_EQ(*read_file(p, 100), "old");
  EXPECT_EQ(entries_in(dir_), 1u);  // the temp file is gone
}

TEST_F(IoTest, WriteFileAtomicUsesTheModeAndAFillThatWritesAnywhere) {
  ::umask(022);
  std::string p = dir_ + "/cache.json";
  ASSERT_TRUE(write_file_atomic(p, "x", AtomicWriteOptions{.mode = 0644}).ok());
  EXPECT_EQ(fs::status(p).permissions(), fs::perms(0644));
  ASSERT_TRUE(write_file_atomic(p, "y").ok());
  EXPECT_EQ(fs::status(p).permissions(), fs::perms(0600));  // the default: a new file each time
  // A sparse fill: pwrite past the start, then set the size (the snapshot memory file).
  ASSERT_TRUE(write_file_atomic(p, [&](int fd) -> Status {
    KILN_TRY(pwrite_all(fd, "z", 1, 10, p));
    return ::ftruncate(fd, 20) == 0 ? ok_status() : errno_error("truncate");
  }, AtomicWriteOptions{.sync_dir = false}).ok());
  auto text = read_file(p, 100);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, std::string(10, '\0') + "z" + std::string(9, '\0'));
  EXPECT_TRUE(sync_parent_dir(p).ok());
  EXPECT_TRUE(sync_parent_dir("relative-name").ok());  // the current directory
  EXPECT_FALSE(sync_parent_dir(dir_ + "/missing/f").ok());
}

TEST_F(IoTest, WriteFileAtomicInAReadOnlyDirectoryIsAnError) {
  std::string p = put("f", "old");
  ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);
  as_unprivileged([&] {
    auto r = write_file_atomic(p, "new");
    return !r.ok() && r.error().sys_errno == EACCES && r.error().message.rfind("create " + p + ".", 0) == 0;
  });
  ::chmod(dir_.c_str(), 0755);
  EXPECT_EQ(*read_file(p, 100), "old");
}

TEST_F(IoTest, MakeDirsCreatesEveryMissingComponentWithTheMode) {
  std::string deep = dir_ + "/a/b//c/";
  ASSERT_TRUE(make_dirs(deep, 0700).ok());
  EXPECT_TRUE(fs::is_directory(dir_ + "/a/b/c"));
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_TRUE(make_dirs(deep, 0700).ok());  // all there already: fine

  fs::create_directory_symlink(dir_ + "/a", dir_ + "/link");
  EXPECT_TRUE(make_dirs(dir_ + "/link/b/d", 0755).ok());  // a symlink to a directory is fine
  EXPECT_TRUE(fs::is_directory(dir_ + "/a/b/d"));

  EXPECT_FALSE(make_dirs("", 0755).ok());
  EXPECT_TRUE(make_dirs("/", 0755).ok());
}

TEST_F(IoTest, MakeDirsRefusesAFileInTheWay) {
  std::string file = put("file", "x");
  auto last = make_dirs(file, 0755);
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().message, file + " exists and is not a directory");
  auto middle = make_dirs(file + "/sub", 0755);
  ASSERT_FALSE(middle.ok());
  EXPECT_EQ(middle.error().sys_errno, ENOTDIR);
  EXPECT_EQ(middle.error().message.rfind("mkdir " + file + "/sub: ", 0), 0u) << middle.error().message;
}

TEST_F(IoTest, MakeDirsWithoutPermissionIsAnError) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);
  as_unprivileged([&] {
    auto r = make_dirs(dir_ + "/x/y", 0755);
    return !r.ok() && r.error().sys_errno == EACCES && r.error().message.rfind("mkdir " + dir_ + "/x: ", 0) == 0;
  });
  ::chmod(dir_.c_str(), 0755);
}

TEST_F(IoTest, MakeDirsBelowRefusesSymlinksAndFiles) {
  ASSERT_TRUE(make_dirs_below(dir_, "a/b/c", 0755).ok());
  EXPECT_TRUE(fs::is_directory(dir_ + "/a/b/c"));
  ASSERT_TRUE(make_dirs_below(dir_, "/a//b/", 0755).ok());  // stray slashes are skipped

  fs::create_directory_symlink(dir_ + "/a", dir_ + "/link");
  auto via_link = make_dirs_below(dir_, "link/x", 0755);
  ASSERT_FALSE(via_link.ok());
  EXPECT_EQ(via_link.error().message, dir_ + "/link exists and is not a directory");
  EXPECT_FALSE(fs::exists(dir_ + "/a/x"));

  put("f", "x");
  EXPECT_FALSE(make_dirs_below(dir_, "f/x", 0755).ok());
}

}  // namespace
}  // namespace kiln::io

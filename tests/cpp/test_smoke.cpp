#include <gtest/gtest.h>

#include <cstring>

#include "test_util.hpp"

using namespace flatlane;
using namespace flatlane::test;
using namespace std::chrono_literals;

TEST(Smoke, WriteThenRead) {
  TempName name;
  Writer w(name, opts(OpenMode::create));
  Reader r(name, opts(OpenMode::open));
  auto span = w.reserve(5);
  ASSERT_TRUE(span.ok());
  std::memcpy(span->data(), "hello", 5);
  w.commit(5);
  auto f = r.read(1s);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->ptr()), f->size()), "hello");
  EXPECT_EQ(f->seq(), 1u);
}

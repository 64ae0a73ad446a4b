// fern::fiber_local<T>: one value per fiber (the root fiber included), created on first access
// from the initializer or T(), and destroyed when its fiber ends, whether it returned, threw or
// was killed.
#include <gtest/gtest.h>
#include <fern/fern.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Counts live instances and destructor calls.
struct tracked {
  static int live;
  static int destroyed;
  int value;
  explicit tracked(int v = 0) : value(v) { ++live; }
  tracked(const tracked& o) : value(o.value) { ++live; }
  ~tracked() {
    --live;
    ++destroyed;
  }
};
int tracked::live = 0;
int tracked::destroyed = 0;

class FiberLocalTest : public ::testing::Test {
 protected:
  void SetUp() override { tracked::live = tracked::destroyed = 0; }
};

TEST_F(FiberLocalTest, EachFiberSeesItsOwnValue) {
  fern::fiber_local<int> local;
  *local = 99;  // the root fiber's own value
  std::vector<int> seen;
  std::vector<fern::fiber<void>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(fern::spawn([&, i] {
      EXPECT_EQ(*local, 0);  // a new fiber starts from T()
      *local = i * 10;
      fern::yield();  // the others write theirs meanwhile
      seen.push_back(*local);
    }));
  EXPECT_TRUE(fern::joinall(fs));
  EXPECT_EQ(seen, (std::vector<int>{0, 10, 20}));
  EXPECT_EQ(*local, 99);
}

TEST_F(FiberLocalTest, GetReturnsTheSameObjectWithinAFiber) {
  fern::fiber_local<std::string> local;
  auto f = fern::spawn([&] {
    std::string* a = &local.get();
    local->append("x");
    fern::yield();
    EXPECT_EQ(a, &*local);
    return *local;
  });
  EXPECT_EQ(f.get(), "x");
  EXPECT_EQ(*local, "");
}

TEST_F(FiberLocalTest, InitializerRunsOncePerFiberOnFirstAccess) {
  int calls = 0;
  fern::fiber_local<std::string> local([&] {
    ++calls;
    return std::string("init-") + std::to_string(calls);
  });
  EXPECT_EQ(calls, 0);  // lazily
  auto a = fern::spawn([&] {
    std::string first = *local;
    local->append("!");
    return first + " " + *local;
  });
  EXPECT_EQ(a.get(), "init-1 init-1!");
  EXPECT_EQ(calls, 1);
  auto b = fern::spawn([&] { return *local; });
  EXPECT_EQ(b.get(), "init-2");
  EXPECT_EQ(*local, "init-3");  // the root's own
  EXPECT_EQ(*local, "init-3");
  EXPECT_EQ(calls, 3);
}

TEST_F(FiberLocalTest, ValuesAreDestroyedWhenTheirFiberEnds) {
  fern::fiber_local<tracked> local([] { return tracked(5); });
  fern::event go;
  auto f = fern::spawn([&] {
    EXPECT_EQ(local->value, 5);
    go.wait();
  });
  fern::yield();
  EXPECT_EQ(tracked::live, 1);
  const int destroyed_before = tracked::destroyed;  // (temporaries the initializer may make)
  go.set();
  f.join();
  EXPECT_EQ(tracked::live, 0);
  EXPECT_EQ(tracked::destroyed, destroyed_before + 1);
}

TEST_F(FiberLocalTest, ValuesOfAKilledFiberAreDestroyed) {
  fern::fiber_local<tracked> local;
  fern::event never;
  auto f = fern::spawn([&] {
    local->value = 1;
    never.wait();
  });
  fern::yield();
  EXPECT_EQ(tracked::live, 1);
  EXPECT_TRUE(f.kill());
  EXPECT_EQ(tracked::live, 0);
  EXPECT_EQ(tracked::destroyed, 1);
}

TEST_F(FiberLocalTest, ValuesOfAFiberThatThrewAreDestroyed) {
  fern::fiber_local<tracked> local;
  auto f = fern::spawn([&] {
    local->value = 2;
    throw std::runtime_error("expected failure");
  });
  f.join();
  EXPECT_THROW(f.get(), std::runtime_error);
  EXPECT_EQ(tracked::live, 0);
  EXPECT_EQ(tracked::destroyed, 1);
}

TEST_F(FiberLocalTest, SeveralLocalsAreIndependent) {
  fern::fiber_local<tracked> a, b;
  auto f = fern::spawn([&] {
    a->value = 1;
    b->value = 2;
    EXPECT_EQ(a->value, 1);
    EXPECT_EQ(b->value, 2);
    EXPECT_EQ(tracked::live, 2);
  });
  f.join();
  EXPECT_EQ(tracked::live, 0);
  EXPECT_EQ(tracked::destroyed, 2);
}

// A value whose destructor reads another fiber_local of the same fiber during teardown.
fern::fiber_local<tracked>* g_other = nullptr;
struct touches_other {
  ~touches_other() { (*g_other)->value = 3; }
};

TEST_F(FiberLocalTest, DestructorThatTouchesAnotherLocalDuringTeardownIsHandled) {
  fern::fiber_local<tracked> other;
  fern::fiber_local<touches_other> first;
  g_other = &other;
  auto f = fern::spawn([&] { first.get(); });  // only `first` exists until teardown
  f.join();
  g_other = nullptr;
  EXPECT_EQ(tracked::live, 0);  // the value created by the destructor was destroyed too
  EXPECT_EQ(tracked::destroyed, 1);
}

struct no_default {
  explicit no_default(int v) : v(v) {}
  int v;
};

TEST_F(FiberLocalTest, NoInitializerAndNoDefaultConstructorThrowsLogicError) {
  fern::fiber_local<no_default> bare;
  EXPECT_THROW(bare.get(), std::logic_error);
  fern::fiber_local<no_default> with_init([] { return no_default(4); });
  EXPECT_EQ(with_init->v, 4);
}

}  // namespace

// A Curator contender for zkrecipes' interoperability tests.
//
//   java CuratorWorker SERVERS PATH MODE ROUNDS HOLD_MS
//
// MODE is mutex (InterProcessMutex), read or write (InterProcessReadWriteLock),
// or latch (LeaderLatch). Each round it takes the lock (or leads), prints
// "ENTER <czxid> <node path>", holds it for HOLD_MS, prints "EXIT", waits
// for a line on stdin (the test has noted the exit) and gives it back. It
// prints "SESSION <id hex> <password hex>" once connected and "DONE" at the
// end.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.reflect.Method;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.retry.RetryForever;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class CuratorWorker {
    static final BufferedReader in = new BufferedReader(new InputStreamReader(System.in));

    public static void main(String[] args) throws Exception {
        String servers = args[0], path = args[1], mode = args[2];
        int rounds = Integer.parseInt(args[3]);
        long hold = Long.parseLong(args[4]);
        CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(servers).sessionTimeoutMs(4000).connectionTimeoutMs(30000)
            .retryPolicy(new RetryForever(100)).build();
        client.start();
        client.blockUntilConnected();
        ZooKeeper zk = client.getZookeeperClient().getZooKeeper();
        System.out.println("SESSION " + Long.toHexString(zk.getSessionId()) + " " + hex(zk.getSessionPasswd()));
        Method lockPath = InterProcessMutex.class.getDeclaredMethod("getLockPath");
        lockPath.setAccessible(true);
        for (int i = 0; i < rounds; i++) {
            if (mode.equals("latch")) {
                LeaderLatch latch = new LeaderLatch(client, path, "curator");
                latch.start();
                latch.await();
                enter(client, latch.getOurPath(), hold);
                latch.close();
                continue;
            }
            InterProcessMutex lock;
            if (mode.equals("mutex")) {
                lock = new InterProcessMutex(client, path);
            } else {
                InterProcessReadWriteLock rw = new InterProcessReadWriteLock(client, path);
                lock = mode.equals("read") ? rw.readLock() : rw.writeLock();
            }
            lock.acquire();
            try {
                enter(client, (String) lockPath.invoke(lock), hold);
            } finally {
                lock.release();
            }
        }
        System.out.println("DONE");
        System.out.flush();
        client.close();
    }

    static void enter(CuratorFramework client, String node, long hold) throws Exception {
        Stat st = client.checkExists().forPath(node);
        System.out.println("ENTER " + st.getCzxid() + " " + node);
        System.out.flush();
        Thread.sleep(hold);
        System.out.println("EXIT");
        System.out.flush();
        in.readLine(); // the test's go-ahead: it has noted our exit
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(String.format("%02x", x));
        return s.toString();
    }
}
